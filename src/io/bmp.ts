/**
 * BMP (Windows bitmap) decoding and encoding, which sharp (libvips) lacks. No maintained npm package covers the
 * common variants (fast-bmp reads only V5 headers; bmp-js is unmaintained), so this is a small one of our own.
 *
 * Decodes: BITMAPCOREHEADER, BITMAPINFOHEADER and its V2–V5 extensions; 1-, 4- and 8-bit palettes, 16-bit
 * (5-5-5 or bit fields), 24-bit, 32-bit BI_RGB (4th byte unused) and BI_BITFIELDS / BI_ALPHABITFIELDS (alpha kept
 * when a mask names it); bottom-up and top-down rows; rows padded to 4 bytes. Not supported: RLE and embedded
 * JPEG/PNG compression. Palettes of grays decode to one channel.
 * Encodes: 8-bit gray (with a gray palette), 24-bit RGB, and 32-bit RGBA (BITMAPV4HEADER with bit fields).
 */

export interface BmpImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  /** Interleaved 8-bit pixels, top row first. */
  data: Uint8Array;
}

/** A file that is not a BMP we can decode; the message says what is wrong (the caller adds the file name). */
export class BmpFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BmpFormatError';
  }
}

const FILE_HEADER = 14;
const INFO_HEADER = 40;
const V4_HEADER = 108;
const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;
const COMPRESSION_NAMES: Record<number, string> = { 1: 'RLE8', 2: 'RLE4', 4: 'JPEG', 5: 'PNG' };

/** True when the bytes start with the BMP signature "BM". */
export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

/** One colour channel described by a bit mask: where it sits and how to widen it to 8 bits. */
interface Channel {
  shift: number;
  max: number;
}

function channelOf(mask: number): Channel | null {
  if (mask === 0) return null;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  return { shift, max: mask >>> shift };
}

function widen(value: number, c: Channel | null): number {
  if (!c) return 0;
  const v = (value >>> c.shift) & c.max;
  return c.max === 255 ? v : Math.round((v * 255) / c.max);
}

function rowStride(bitsPerPixel: number, width: number): number {
  return Math.floor((bitsPerPixel * width + 31) / 32) * 4;
}

export function decodeBmp(bytes: Uint8Array): BmpImage {
  if (!isBmp(bytes)) throw new BmpFormatError('not a BMP file (no "BM" signature)');
  if (bytes.length < FILE_HEADER + 12) throw new BmpFormatError(`truncated BMP: ${bytes.length} bytes, too short for the headers`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataOffset = view.getUint32(10, true);
  const headerSize = view.getUint32(FILE_HEADER, true);
  const core = headerSize === 12;
  if (!core && headerSize < INFO_HEADER) throw new BmpFormatError(`unknown BMP header of ${headerSize} bytes`);
  if (bytes.length < FILE_HEADER + headerSize) throw new BmpFormatError(`truncated BMP: the ${headerSize}-byte header is cut off at ${bytes.length} bytes`);

  const h = FILE_HEADER;
  const width = core ? view.getUint16(h + 4, true) : view.getInt32(h + 4, true);
  const rawHeight = core ? view.getInt16(h + 6, true) : view.getInt32(h + 8, true);
  const bitsPerPixel = core ? view.getUint16(h + 10, true) : view.getUint16(h + 14, true);
  const compression = core ? BI_RGB : view.getUint32(h + 16, true);
  const colorsUsed = core ? 0 : view.getUint32(h + 32, true);
  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) throw new BmpFormatError(`invalid BMP size ${width}×${rawHeight}`);
  if (COMPRESSION_NAMES[compression]) throw new BmpFormatError(`${COMPRESSION_NAMES[compression]}-compressed BMP is not supported; save it uncompressed`);
  if (compression !== BI_RGB && compression !== BI_BITFIELDS && compression !== BI_ALPHABITFIELDS)
    throw new BmpFormatError(`unknown BMP compression ${compression}`);
  if (![1, 4, 8, 16, 24, 32].includes(bitsPerPixel)) throw new BmpFormatError(`unsupported BMP bit depth ${bitsPerPixel}`);

  // Bit masks: inside the header from V2 on, else right after a BITMAPINFOHEADER.
  let afterHeader = FILE_HEADER + headerSize;
  let masks: [number, number, number, number] | null = null;
  if (compression !== BI_RGB) {
    if (bitsPerPixel !== 16 && bitsPerPixel !== 32) throw new BmpFormatError(`bit fields need 16 or 32 bits per pixel, not ${bitsPerPixel}`);
    const at = headerSize >= 52 ? h + 40 : afterHeader;
    const count = headerSize >= 56 || compression === BI_ALPHABITFIELDS ? 4 : 3;
    if (bytes.length < at + 4 * count) throw new BmpFormatError('truncated BMP: the colour masks are cut off');
    masks = [0, 1, 2, 3].map((k) => (k < count ? view.getUint32(at + 4 * k, true) : 0)) as [number, number, number, number];
    if (headerSize < 52) afterHeader += 4 * count;
  } else if (bitsPerPixel === 16) masks = [0x7c00, 0x03e0, 0x001f, 0];

  let palette: Uint8Array | null = null;
  let grayPalette = false;
  if (bitsPerPixel <= 8) {
    const entries = colorsUsed || 1 << bitsPerPixel;
    const entryBytes = core ? 3 : 4;
    if (entries > 1 << bitsPerPixel) throw new BmpFormatError(`palette of ${entries} colours for ${bitsPerPixel}-bit pixels`);
    if (bytes.length < afterHeader + entries * entryBytes) throw new BmpFormatError('truncated BMP: the palette is cut off');
    palette = new Uint8Array(entries * 3); // RGB
    for (let i = 0; i < entries; i++) {
      const p = afterHeader + i * entryBytes;
      palette.set([bytes[p + 2], bytes[p + 1], bytes[p]], 3 * i);
    }
    grayPalette = palette.every((_, i) => i % 3 !== 0 || (palette![i] === palette![i + 1] && palette![i] === palette![i + 2]));
  }

  const stride = rowStride(bitsPerPixel, width);
  const needed = dataOffset + stride * height;
  if (dataOffset < afterHeader || needed > bytes.length)
    throw new BmpFormatError(`truncated BMP: ${width}×${height} at ${bitsPerPixel} bits needs ${needed} bytes, the file has ${bytes.length}`);

  const alpha = masks ? channelOf(masks[3]) : null;
  const channels: 1 | 3 | 4 = palette ? (grayPalette ? 1 : 3) : alpha ? 4 : 3;
  const out = new Uint8Array(width * height * channels);
  const [r, g, b] = masks ? masks.slice(0, 3).map(channelOf) : [null, null, null];
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * channels;
      if (palette) {
        const bit = x * bitsPerPixel;
        const index = (bytes[row + (bit >> 3)] >> (8 - bitsPerPixel - (bit & 7))) & ((1 << bitsPerPixel) - 1);
        if (3 * index >= palette.length) throw new BmpFormatError(`pixel (${x}, ${y}) uses colour ${index}, the palette has ${palette.length / 3}`);
        if (channels === 1) out[o] = palette[3 * index];
        else out.set(palette.subarray(3 * index, 3 * index + 3), o);
      } else if (masks) {
        const p = row + x * (bitsPerPixel / 8);
        const value = bitsPerPixel === 16 ? view.getUint16(p, true) : view.getUint32(p, true);
        out[o] = widen(value, r);
        out[o + 1] = widen(value, g);
        out[o + 2] = widen(value, b);
        if (alpha) out[o + 3] = widen(value, alpha);
      } else {
        const p = row + x * (bitsPerPixel / 8); // BGR, and a 4th unused byte for 32-bit BI_RGB
        out[o] = bytes[p + 2];
        out[o + 1] = bytes[p + 1];
        out[o + 2] = bytes[p];
      }
    }
  }
  return { width, height, channels, data: out };
}

/** Encodes 8-bit interleaved pixels (1, 3 or 4 channels, top row first) as an uncompressed bottom-up BMP. */
export function encodeBmp(data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Uint8Array {
  if (data.length !== width * height * channels) throw new BmpFormatError(`expected ${width * height * channels} values, got ${data.length}`);
  const bitsPerPixel = channels * 8;
  const headerSize = channels === 4 ? V4_HEADER : INFO_HEADER;
  const paletteBytes = channels === 1 ? 256 * 4 : 0;
  const stride = rowStride(bitsPerPixel, width);
  const dataOffset = FILE_HEADER + headerSize + paletteBytes;
  const bytes = new Uint8Array(dataOffset + stride * height);
  const view = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  view.setUint32(2, bytes.length, true);
  view.setUint32(10, dataOffset, true);
  const h = FILE_HEADER;
  view.setUint32(h, headerSize, true);
  view.setInt32(h + 4, width, true);
  view.setInt32(h + 8, height, true);
  view.setUint16(h + 12, 1, true); // planes
  view.setUint16(h + 14, bitsPerPixel, true);
  view.setUint32(h + 16, channels === 4 ? BI_BITFIELDS : BI_RGB, true);
  view.setUint32(h + 20, stride * height, true);
  view.setInt32(h + 24, 2835, true); // 72 dpi
  view.setInt32(h + 28, 2835, true);
  if (channels === 1) view.setUint32(h + 32, 256, true);
  if (channels === 4) {
    [0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000].forEach((m, k) => view.setUint32(h + 40 + 4 * k, m, true));
    view.setUint32(h + 56, 0x73524742, true); // 'sRGB' colour space
  }
  for (let i = 0; i < paletteBytes / 4; i++) bytes.set([i, i, i, 0], FILE_HEADER + headerSize + 4 * i);
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * channels;
      const d = row + x * channels;
      if (channels === 1) bytes[d] = data[s];
      else {
        bytes[d] = data[s + 2];
        bytes[d + 1] = data[s + 1];
        bytes[d + 2] = data[s];
        if (channels === 4) bytes[d + 3] = data[s + 3];
      }
    }
  }
  return bytes;
}
