/** Image decoding and encoding in a browser: createImageBitmap and an OffscreenCanvas (see codec.ts). */
import { ImageError, type Image, type ImageChannels } from './image-types.ts';

/** Decodes encoded bytes to RGBA with the browser's decoders. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<Image> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  } catch (e) {
    throw new ImageError(name, `cannot be read as an image (${(e as Error).message})`);
  }
  return bitmapToImage(bitmap);
}

/** RGBA pixels of an ImageBitmap (or anything drawable on a canvas with a width and a height). */
export function bitmapToImage(source: CanvasImageSource & { width: number; height: number }): Image {
  const { width, height } = source;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser has no 2-D canvas context');
  ctx.drawImage(source, 0, 0);
  const data = ctx.getImageData(0, 0, width, height).data;
  return { width, height, channels: 4, bitDepth: 8, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export async function readImage(path: string): Promise<Image> {
  throw new ImageError(path, 'file paths cannot be read in a browser');
}

/** Encodes 8-bit gray, RGB or RGBA pixels as PNG or JPEG through a canvas. */
export async function encodeImage(
  data: Uint8Array | Uint16Array,
  width: number,
  height: number,
  channels: ImageChannels,
  format: 'png' | 'jpeg',
  name = 'image',
  quality = 95,
): Promise<Uint8Array> {
  if (data instanceof Uint16Array) throw new ImageError(name, '16-bit images cannot be encoded in a browser');
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = data[i * channels + (channels === 1 ? 0 : c)];
    rgba[4 * i + 3] = channels === 4 ? data[4 * i + 3] : 255;
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext('2d')!.putImageData(new ImageData(rgba, width, height), 0, 0);
  const blob = await canvas.convertToBlob({ type: `image/${format}`, quality: quality / 100 });
  return new Uint8Array(await blob.arrayBuffer());
}
