/**
 * The image forms the fusion runtime accepts, without any platform code: gray floats in [0,1], ImageData-like RGBA
 * bytes, sharp's raw output ({ data, info }), and this project's decoded images. Each becomes one gray plane in [0,1]
 * (BT.601 luma for colour, the first channel for infrared) with its colour kept for colour output. Everything is
 * checked: sizes, value ranges, NaN, and a message names the image ("infrared", "visible") and what is wrong.
 */
import type { Image } from './image-types.ts';
import { toGray01 } from './color.ts';

/** A gray image: row-major values in [0,1]. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Browser ImageData or anything shaped like it: RGBA bytes, 4 per pixel. */
export interface ImageDataLike {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
}

/**
 * sharp's `.raw().toBuffer({ resolveWithObject: true })`: interleaved 8-bit (or 16-bit) pixels. `C`: the channel
 * counts (what FusedImage.toRaw gives is 1 or 3, as sharp's `raw` option wants a literal count).
 */
export interface RawPixels<C extends number = number> {
  data: Uint8Array | Uint16Array;
  info: { width: number; height: number; channels: C };
}

/** Every in-memory form `Fuser.fuse` takes (file paths and encoded bytes are decoded first). */
export type PixelInput = GrayImage | ImageDataLike | RawPixels | Image;

/** A checked input: its gray plane for the network and, when it has colour, the decoded image for colour output. */
export interface Planes {
  width: number;
  height: number;
  gray: Float32Array;
  /** The source as an 8/16-bit image (colour output takes the visible image's chroma from it). */
  image: Image | null;
}

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

function checkSize(what: string, width: unknown, height: unknown): asserts width is number {
  if (!Number.isInteger(width) || !Number.isInteger(height) || (width as number) < 1 || (height as number) < 1)
    throw new InputError(`${what}: width and height must be positive integers, got ${String(width)}×${String(height)}`);
}

function isTyped(v: unknown): v is ArrayLike<number> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** Converts and checks one input; `role` decides the gray conversion (infrared: first channel; visible: luma). */
export function toPlanes(input: PixelInput, what: string, role: 'infrared' | 'visible'): Planes {
  if (!input || typeof input !== 'object') throw new InputError(`${what}: expected an image, got ${input === null ? 'null' : typeof input}`);
  const mode = role === 'infrared' ? 'first' : 'luma';
  if ('info' in input && input.info && typeof input.info === 'object') {
    const { width, height, channels } = input.info;
    checkSize(what, width, height);
    if (![1, 2, 3, 4].includes(channels)) throw new InputError(`${what}: ${channels} channels; expected 1 to 4`);
    const image = rawToImage(input.data, width, height, channels, what);
    return { width, height, gray: toGray01(image, mode), image };
  }
  const { width, height, data } = input as { width: unknown; height: unknown; data: unknown };
  checkSize(what, width, height);
  const n = width * (height as number);
  if ('channels' in input && 'bitDepth' in input) {
    const image = input as Image;
    if (image.data.length !== n * image.channels)
      throw new InputError(`${what}: ${image.data.length} values for ${width}×${height}×${image.channels}`);
    return { width, height: height as number, gray: toGray01(image, mode), image };
  }
  if (data instanceof Float32Array) {
    if (data.length !== n)
      throw new InputError(
        `${what}: ${data.length} values, expected ${width}×${height} = ${n} gray values in [0,1]` +
          (data.length === 4 * n ? ' (4 per pixel: pass RGBA bytes as Uint8Array/Uint8ClampedArray)' : ''),
      );
    checkUnitRange(data, width, what);
    return { width, height: height as number, gray: data, image: null };
  }
  if (data instanceof Uint8ClampedArray || data instanceof Uint8Array) {
    if (data.length !== 4 * n)
      throw new InputError(`${what}: ${data.length} bytes; ImageData-like input needs ${width}×${height}×4 = ${4 * n} RGBA bytes`);
    const image = rawToImage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height as number, 4, what);
    return { width, height: height as number, gray: toGray01(image, mode), image };
  }
  throw new InputError(
    `${what}: unsupported data ${isTyped(data) ? data.constructor.name : typeof data}; expected Float32Array gray values in [0,1], ` +
      'RGBA bytes (ImageData), sharp raw output { data, info }, a file path or encoded image bytes',
  );
}

/** Gray+alpha becomes RGBA so that channels are 1, 3 or 4, as decoded images are. */
function rawToImage(data: unknown, width: number, height: number, channels: number, what: string): Image {
  if (!(data instanceof Uint8Array) && !(data instanceof Uint16Array))
    throw new InputError(`${what}: raw pixels must be a Uint8Array/Buffer or Uint16Array, got ${isTyped(data) ? data.constructor.name : typeof data}`);
  const n = width * height;
  if (data.length !== n * channels) throw new InputError(`${what}: ${data.length} values for ${width}×${height}×${channels} = ${n * channels}`);
  const bitDepth = data instanceof Uint16Array ? 16 : 8;
  if (channels !== 2) return { width, height, channels: channels as 1 | 3 | 4, bitDepth, data };
  const rgba = bitDepth === 16 ? new Uint16Array(4 * n) : new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) rgba.set([data[2 * i], data[2 * i], data[2 * i], data[2 * i + 1]], 4 * i);
  return { width, height, channels: 4, bitDepth, data: rgba };
}

/** Refuses NaN, infinities and values outside [0,1], naming the first bad pixel. */
export function checkUnitRange(data: Float32Array, width: number, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v <= 1)) {
      const where = `pixel (${i % width}, ${Math.floor(i / width)})`;
      if (Number.isNaN(v)) throw new InputError(`${what}: ${where} is NaN`);
      const hint = v > 1 && v <= 255 ? ' (8-bit values? divide by 255, or pass Uint8 pixels)' : '';
      throw new InputError(`${what}: ${where} is ${v}; gray values must lie in [0,1]${hint}`);
    }
  }
}

/** Both inputs of a pair must have one size. */
export function checkPair(ir: Planes, vis: Planes): void {
  if (ir.width !== vis.width || ir.height !== vis.height)
    throw new InputError(`infrared ${ir.width}×${ir.height} and visible ${vis.width}×${vis.height} differ in size`);
}
