/**
 * Image files' bytes on the platform at hand: decoded and encoded by sharp in Node, by the browser's own decoders
 * and canvas on the web. The platform module is loaded on first use, so a browser bundle never runs Node code.
 */
import type { Image, ImageChannels } from './image-types.ts';

export type EncodedFormat = 'png' | 'jpeg';

interface Codec {
  decodeImage(bytes: Uint8Array, name: string): Promise<Image>;
  readImage(path: string): Promise<Image>;
  encodeImage(data: Uint8Array | Uint16Array, width: number, height: number, channels: ImageChannels, format: EncodedFormat, name?: string, quality?: number): Promise<Uint8Array>;
}

export const isNode = typeof process !== 'undefined' && !!process.versions?.node;

let codec: Promise<Codec> | null = null;

function platformCodec(): Promise<Codec> {
  codec ??= isNode ? import('./image.ts') : import('./image-web.ts');
  return codec;
}

/** Decodes encoded bytes (PNG, JPEG, …); `name` names the image in errors. */
export async function decodeBytes(bytes: Uint8Array, name: string): Promise<Image> {
  return (await platformCodec()).decodeImage(bytes, name);
}

/** Reads and decodes an image file (Node only). */
export async function readImageFile(path: string): Promise<Image> {
  if (!isNode) throw new Error(`${path}: file paths work in Node only; in a browser pass a File, Blob, ImageBitmap or ImageData`);
  return (await platformCodec()).readImage(path);
}

/** Encodes interleaved 8- or 16-bit pixels as PNG or JPEG. */
export async function encodePixels(data: Uint8Array | Uint16Array, width: number, height: number, channels: ImageChannels, format: EncodedFormat, quality = 95): Promise<Uint8Array> {
  return (await platformCodec()).encodeImage(data, width, height, channels, format, format.toUpperCase(), quality);
}
