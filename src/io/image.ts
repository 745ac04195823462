/**
 * Reading and writing images: PNG, JPEG, TIFF and WebP with `sharp`, BMP with our own codec (bmp.ts), chosen by
 * the file's signature when reading and by the extension when writing. Pixels are interleaved (row-major, channel
 * last), 8- or 16-bit. Every error names the file and says what is wrong with it.
 */
import { existsSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { BmpFormatError, decodeBmp, encodeBmp, isBmp } from './bmp.ts';
import { ImageError, ImageTooLargeError, type Image, type ImageChannels } from './image-types.ts';
import { writeFileAtomic } from './atomic.ts';

export { ImageError, ImageTooLargeError, type Image, type ImageChannels } from './image-types.ts';

/**
 * The most pixels an image may have to be decoded: sharp's (libvips') own default, kept as a guard against
 * decompression bombs. A larger image is refused with its size as too large (exit 3), as the GPU refuses one.
 */
export const MAX_DECODE_PIXELS = 0x3fff * 0x3fff;

/** EXIF orientations 5-8 turn the picture by a quarter: its displayed width and height are the stored ones swapped. */
const swapsSides = (orientation: number | undefined) => (orientation ?? 1) >= 5;

function checkDecodable(name: string, width: number, height: number): void {
  if (width * height > MAX_DECODE_PIXELS)
    throw new ImageTooLargeError(name, `${width}×${height} (${((width * height) / 1e6).toFixed(0)} megapixels) is larger than the ${(MAX_DECODE_PIXELS / 1e6).toFixed(0)} megapixels an image may have`);
}

/** Reads an image file. Gray+alpha is widened to RGBA so that `channels` is always 1, 3 or 4. */
export async function readImage(path: string): Promise<Image> {
  if (!existsSync(path)) throw new ImageError(path, 'file not found');
  if (!statSync(path).isFile()) throw new ImageError(path, 'not a file');
  return decodeImage(await readFile(path), path);
}

/** Width and height from an image file's header, without decoding its pixels. */
export async function imageSize(path: string): Promise<{ width: number; height: number }> {
  if (!existsSync(path)) throw new ImageError(path, 'file not found');
  if (!statSync(path).isFile()) throw new ImageError(path, 'not a file');
  const head = new Uint8Array(64);
  const fd = await open(path, 'r');
  try {
    await fd.read(head, 0, 64, 0);
  } finally {
    await fd.close();
  }
  if (isBmp(head)) {
    const view = new DataView(head.buffer);
    const core = view.getUint32(14, true) === 12;
    const width = core ? view.getUint16(18, true) : view.getInt32(18, true);
    const height = Math.abs(core ? view.getInt16(20, true) : view.getInt32(22, true));
    checkDecodable(path, width, height);
    return { width, height };
  }
  let size: { width: number; height: number };
  try {
    const meta = await sharp(path, { failOn: 'none', limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height) throw new Error('no size in the header');
    // As displayed: decodeImage applies the EXIF orientation.
    size = swapsSides(meta.orientation) ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
  } catch (e) {
    throw new ImageError(path, `cannot be read as an image (${(e as Error).message})`);
  }
  checkDecodable(path, size.width, size.height);
  return size;
}

/** Decodes an encoded image (PNG, JPEG, TIFF, WebP, BMP…); `name` names it in errors. */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<Image> {
  try {
    if (isBmp(bytes)) return { ...decodeBmp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)), bitDepth: 8 };
    let pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: false });
    const meta = await pipeline.metadata();
    if (meta.width && meta.height) checkDecodable(name, meta.width, meta.height);
    // Turned upright by its EXIF orientation, as photo viewers show it (cameras store portraits sideways).
    if ((meta.orientation ?? 1) > 1) pipeline = pipeline.rotate();
    const sixteen = meta.depth === 'ushort';
    // sharp converts to its pipeline colourspace unless told otherwise: keep plain gray as one channel.
    const plainGray = (meta.space === 'b-w' || meta.space === 'grey16') && !meta.hasAlpha;
    if (plainGray) pipeline = pipeline.toColourspace(sixteen ? 'grey16' : 'b-w');
    else pipeline = pipeline.toColourspace(sixteen ? 'rgb16' : 'srgb');
    if (!plainGray && meta.hasAlpha) pipeline = pipeline.ensureAlpha();
    const { data, info } = await pipeline.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    const channels = info.channels as number;
    if (channels !== 1 && channels !== 3 && channels !== 4)
      throw new Error(`unsupported channel count ${channels}`);
    const pixels = sixteen
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { width: info.width, height: info.height, channels, bitDepth: sixteen ? 16 : 8, data: pixels };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    if (e instanceof BmpFormatError) throw new ImageError(name, e.message);
    throw new ImageError(name, `cannot be read as an image (${(e as Error).message})`);
  }
}

const formats: Record<string, 'png' | 'jpeg' | 'tiff' | 'webp' | 'bmp'> = {
  '.bmp': 'bmp',
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.webp': 'webp',
};

/** The format of an output path from its extension, or an ImageError naming the path. */
export function formatOf(path: string): ImageFormat {
  const ext = extname(path).toLowerCase();
  const format = formats[ext];
  if (!format) throw new ImageError(path, `unknown image extension "${ext}"; use .png, .jpg, .tif, .bmp or .webp`);
  return format;
}

export type ImageFormat = 'png' | 'jpeg' | 'tiff' | 'webp' | 'bmp';

/**
 * Writes interleaved pixels to PNG, JPEG, TIFF, WebP or BMP, chosen by the extension. Uint16Array data is written
 * 16-bit (PNG, TIFF). The file appears atomically (atomic.ts), its folder with it.
 */
export async function writeImage(
  path: string,
  data: Uint8Array | Uint16Array,
  width: number,
  height: number,
  channels: ImageChannels,
): Promise<void> {
  const format = formatOf(path);
  await writeFileAtomic(path, await encodeImage(data, width, height, channels, format, path));
}

/** Encodes interleaved pixels; `name` names the target in errors. JPEG quality 95, lossless everything else. */
export async function encodeImage(
  data: Uint8Array | Uint16Array,
  width: number,
  height: number,
  channels: ImageChannels,
  format: ImageFormat,
  name = 'image',
  quality = 95,
): Promise<Uint8Array> {
  if (data.length !== width * height * channels)
    throw new ImageError(name, `expected ${width}×${height}×${channels} = ${width * height * channels} values, got ${data.length}`);
  const sixteen = data instanceof Uint16Array;
  if (sixteen && format !== 'png' && format !== 'tiff') throw new ImageError(name, `16-bit data cannot be written as ${format}`);
  if (format === 'bmp') return encodeBmp(data as Uint8Array, width, height, channels);
  const gray = channels === 1;
  const pipeline = sharp(data, { raw: { width, height, channels } }).toColourspace(sixteen ? (gray ? 'grey16' : 'rgb16') : gray ? 'b-w' : 'srgb');
  // sharp's TIFF default is JPEG compression, which would be lossy: ask for LZW.
  const options = format === 'jpeg' ? { quality } : format === 'tiff' ? { compression: 'lzw' } : format === 'webp' ? { lossless: true } : {};
  return pipeline.toFormat(format, options).toBuffer();
}
