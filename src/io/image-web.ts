/**
 * Images in a browser: decoding (createImageBitmap), drawing anything drawable (ImageBitmap, <img>, <canvas>,
 * OffscreenCanvas, <video>, VideoFrame) into RGBA pixels, optionally at another size, and encoding through a canvas.
 * codec.ts loads this module on the web; src/web.ts exports imageFrom() for pages.
 */
import { ImageError, type Image, type ImageChannels } from './image-types.ts';
import { InputError, type ImageDataLike } from './pixels.ts';

/** Everything imageFrom() takes. */
export type BrowserImageSource = Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | HTMLVideoElement | VideoFrame | ImageDataLike;

export interface ImageFromOptions {
  /** Output size: both, or one of them (the other keeps the aspect ratio). Default: the source's own size. */
  width?: number;
  height?: number;
  /** Names the image in error messages (default: a File's name, else "image"). */
  name?: string;
}

/** Decoding options that keep the file's values: no colour management, no premultiplied alpha. */
const EXACT: ImageBitmapOptions = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' };

async function bitmapOf(blob: Blob, name: string): Promise<ImageBitmap> {
  try {
    return await createImageBitmap(blob, EXACT);
  } catch (e) {
    const type = blob.type ? ` (${blob.type})` : '';
    throw new ImageError(name, `is not an image this browser can decode${type}: ${(e as Error).message || String(e)}`);
  }
}

/** Decodes encoded bytes (PNG, JPEG, WebP, BMP, GIF, …) to RGBA with the browser's decoders. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<Image> {
  const bitmap = await bitmapOf(new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  try {
    return bitmapToImage(bitmap);
  } finally {
    bitmap.close();
  }
}

/** The intrinsic size of a drawable source (an <img>'s natural size, not its size on the page). */
function sizeOf(source: CanvasImageSource): { width: number; height: number } {
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) return { width: source.naturalWidth, height: source.naturalHeight };
  if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) return { width: source.videoWidth, height: source.videoHeight };
  if (typeof VideoFrame !== 'undefined' && source instanceof VideoFrame) return { width: source.displayWidth, height: source.displayHeight };
  const s = source as { width: number | SVGAnimatedLength; height: number | SVGAnimatedLength };
  if (typeof s.width !== 'number' || typeof s.height !== 'number') throw new InputError('SVG images are not supported: draw them on a canvas first');
  return { width: s.width, height: s.height };
}

/** The output size: the requested one, a single side with the aspect ratio kept, or the source's. */
export function targetSize(width: number, height: number, opts: Pick<ImageFromOptions, 'width' | 'height'> = {}): { width: number; height: number } {
  const w = opts.width;
  const h = opts.height;
  for (const [k, v] of [['width', w], ['height', h]] as const)
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new InputError(`${k} must be a positive integer, got ${String(v)}`);
  if (w && h) return { width: w, height: h };
  if (w) return { width: w, height: Math.max(1, Math.round((height * w) / width)) };
  if (h) return { width: Math.max(1, Math.round((width * h) / height)), height: h };
  return { width, height };
}

/** RGBA pixels of anything drawable on a canvas, at its own size or at `size` (high-quality smoothing). */
export function bitmapToImage(source: CanvasImageSource, size?: { width: number; height: number }): Image {
  const own = sizeOf(source);
  if (!own.width || !own.height) throw new InputError('the image has no pixels yet (an <img> that has not loaded, a video without a frame?)');
  const { width, height } = size ?? own;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser has no 2-D canvas context');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  return { width, height, channels: 4, bitDepth: 8, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function isImageDataLike(v: unknown): v is ImageDataLike {
  const d = v as ImageDataLike;
  return !!d && typeof d === 'object' && typeof d.width === 'number' && typeof d.height === 'number' && (d.data instanceof Uint8ClampedArray || d.data instanceof Uint8Array);
}

/**
 * Any browser image source as RGBA pixels that Fuser.fuse takes: a File or Blob (decoded; refused with a message
 * naming it when it is not an image), ImageBitmap, <img> (awaited until decoded), <canvas>, OffscreenCanvas,
 * <video>, VideoFrame, or ImageData; at its own size, or resized with { width, height }.
 */
export async function imageFrom(source: BrowserImageSource, opts: ImageFromOptions = {}): Promise<Image> {
  const name = opts.name ?? ((source as File).name || 'image');
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const bitmap = await bitmapOf(source, name);
    try {
      return bitmapToImage(bitmap, targetSize(bitmap.width, bitmap.height, opts));
    } finally {
      bitmap.close();
    }
  }
  if (typeof HTMLImageElement !== 'undefined' && source instanceof HTMLImageElement) {
    try {
      await source.decode();
    } catch (e) {
      throw new ImageError(source.currentSrc || source.src || name, `cannot be decoded as an image (${(e as Error).message})`);
    }
  }
  if (isImageDataLike(source)) {
    const { width, height, data } = source;
    if (data.length !== width * height * 4) throw new InputError(`${name}: ${data.length} bytes; ImageData needs ${width}×${height}×4 = ${width * height * 4}`);
    const size = targetSize(width, height, opts);
    if (size.width === width && size.height === height)
      return { width, height, channels: 4, bitDepth: 8, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(data), width, height), EXACT);
    try {
      return bitmapToImage(bitmap, size);
    } finally {
      bitmap.close();
    }
  }
  const own = sizeOf(source as CanvasImageSource);
  return bitmapToImage(source as CanvasImageSource, targetSize(own.width, own.height, opts));
}

export async function readImage(path: string): Promise<Image> {
  throw new ImageError(path, 'file paths cannot be read in a browser; pass a File, Blob, ImageBitmap or ImageData');
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
