/**
 * Image files: PNG, JPEG, BMP and TIFF, gray and RGB, 8 and 16 bit, written and read back (exact where the format is
 * lossless); BMPs built by hand in the variants other writers produce (palettes, top-down rows, bit fields, V5
 * headers, padded rows); and clear errors, naming the file, for a truncated BMP and a file that is no image.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng.ts';
import { ImageError, readImage, writeImage, type ImageChannels } from '../src/io/image.ts';
import { decodeBmp, encodeBmp } from '../src/io/bmp.ts';
import { assertRejects } from './helpers/throws.ts';

const t = suite('image-io');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-image-'));
t.after(() => rmSync(dir, { recursive: true, force: true }));

// Odd sizes: BMP rows need padding, and nothing lines up with a tile.
const W = 7;
const H = 5;

function random8(n: number, seed: number): Uint8Array {
  return Uint8Array.from(new Rng(seed).uniform(n, 0, 256), Math.floor);
}

function random16(n: number, seed: number): Uint16Array {
  return Uint16Array.from(new Rng(seed).uniform(n, 0, 65536), Math.floor);
}

async function roundTrip(name: string, data: Uint8Array | Uint16Array, channels: ImageChannels) {
  const path = join(dir, name);
  await writeImage(path, data, W, H, channels);
  return readImage(path);
}

for (const ext of ['png', 'tif', 'bmp']) {
  for (const channels of [1, 3] as const) {
    t(`${ext}: 8-bit ${channels === 1 ? 'gray' : 'RGB'} round trip is exact`, async () => {
      const data = random8(W * H * channels, channels);
      const img = await roundTrip(`c${channels}-8.${ext}`, data, channels);
      assert.equal([img.width, img.height, img.channels, img.bitDepth], [W, H, channels, 8]);
      assert.equal([...img.data], [...data]);
    });
  }
}

for (const ext of ['png', 'tif']) {
  for (const channels of [1, 3] as const) {
    t(`${ext}: 16-bit ${channels === 1 ? 'gray' : 'RGB'} round trip is exact`, async () => {
      const data = random16(W * H * channels, 10 + channels);
      const img = await roundTrip(`c${channels}-16.${ext}`, data, channels);
      assert.equal([img.width, img.height, img.channels, img.bitDepth], [W, H, channels, 16]);
      assert.ok(img.data instanceof Uint16Array);
      assert.equal([...img.data], [...data]);
    });
  }
}

t('bmp: RGBA round trip through a V4 header with bit fields is exact', async () => {
  const data = random8(W * H * 4, 4);
  const img = await roundTrip('rgba.bmp', data, 4);
  assert.equal([img.channels, img.bitDepth], [4, 8]);
  assert.equal([...img.data], [...data]);
});

t('jpeg: gray and RGB come back at their size and channel count, close to the original', async () => {
  for (const channels of [1, 3] as const) {
    // A smooth picture: JPEG keeps it within a few levels.
    const data = new Uint8Array(W * H * channels);
    for (let i = 0; i < data.length; i++) {
      const p = Math.floor(i / channels);
      data[i] = 60 + 10 * (p % W) + 12 * Math.floor(p / W) + 20 * (i % channels);
    }
    const img = await roundTrip(`c${channels}.jpg`, data, channels);
    assert.equal([img.width, img.height, img.channels, img.bitDepth], [W, H, channels, 8]);
    const worst = Math.max(...[...img.data].map((v, i) => Math.abs(v - data[i])));
    assert.ok(worst <= 12, `largest JPEG error ${worst}`);
  }
});

t('bmp encoder: bottom-up rows padded to 4 bytes, gray palette, file size in the header', () => {
  const data = Uint8Array.from({ length: W * H }, (_, i) => i);
  const bytes = encodeBmp(data, W, H, 1);
  const view = new DataView(bytes.buffer);
  const stride = 8; // 7 bytes padded to 8
  assert.is(view.getUint32(2, true), bytes.length);
  assert.is(bytes.length, 14 + 40 + 256 * 4 + stride * H);
  assert.is(view.getInt32(22, true), H, 'positive height: bottom-up');
  const offset = view.getUint32(10, true);
  assert.equal([...bytes.subarray(offset, offset + W)], [...data.subarray((H - 1) * W)], 'the first stored row is the bottom one');
  assert.equal([...bytes.subarray(14 + 40 + 4 * 200, 14 + 40 + 4 * 201)], [200, 200, 200, 0], 'gray palette entry');
});

interface HandMadeBmp {
  headerSize: 40 | 108 | 124;
  width: number;
  height: number; // negative: top-down
  bitsPerPixel: number;
  compression?: number;
  /** RGB entries, written as BGRA. */
  palette?: Array<[number, number, number]>;
  /** R, G, B(, A) masks: in the header from V4 on, after a BITMAPINFOHEADER otherwise. */
  masks?: number[];
  /** Stored rows, in file order, each padded here to 4 bytes. */
  rows: number[][];
}

function handMadeBmp(b: HandMadeBmp): Uint8Array {
  const masksAfterHeader = b.masks && b.headerSize === 40 ? 4 * b.masks.length : 0;
  const paletteBytes = (b.palette?.length ?? 0) * 4;
  const offset = 14 + b.headerSize + masksAfterHeader + paletteBytes;
  const stride = Math.ceil(b.rows[0].length / 4) * 4;
  const bytes = new Uint8Array(offset + stride * b.rows.length);
  const v = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  v.setUint32(2, bytes.length, true);
  v.setUint32(10, offset, true);
  v.setUint32(14, b.headerSize, true);
  v.setInt32(18, b.width, true);
  v.setInt32(22, b.height, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, b.bitsPerPixel, true);
  v.setUint32(30, b.compression ?? 0, true);
  v.setUint32(46, b.palette?.length ?? 0, true);
  // Right after a BITMAPINFOHEADER, or inside a V4/V5 header: the same offset.
  b.masks?.forEach((m, k) => v.setUint32(14 + 40 + 4 * k, m, true));
  b.palette?.forEach(([r, g, bl], i) => bytes.set([bl, g, r, 0], 14 + b.headerSize + masksAfterHeader + 4 * i));
  b.rows.forEach((row, y) => bytes.set(row, offset + y * stride));
  return bytes;
}

t('bmp decoder: 8-bit colour palette, top-down rows, padding', () => {
  const palette: Array<[number, number, number]> = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]];
  const bytes = handMadeBmp({ headerSize: 40, width: 3, height: -2, bitsPerPixel: 8, palette, rows: [[0, 1, 2], [3, 3, 0]] });
  const img = decodeBmp(bytes);
  assert.equal([img.width, img.height, img.channels], [3, 2, 3]);
  assert.equal([...img.data], [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 10, 20, 30, 255, 0, 0]);
});

t('bmp decoder: 4-bit gray palette, bottom-up, is one channel', () => {
  const palette: Array<[number, number, number]> = Array.from({ length: 16 }, (_, i) => [i * 17, i * 17, i * 17]);
  // Two pixels per byte, high nibble first; width 3 → 2 bytes of data, padded to 4.
  const bytes = handMadeBmp({ headerSize: 40, width: 3, height: 2, bitsPerPixel: 4, palette, rows: [[0x12, 0x30], [0xf0, 0xa0]] });
  const img = decodeBmp(bytes);
  assert.equal([img.width, img.height, img.channels], [3, 2, 1]);
  assert.equal([...img.data], [15 * 17, 0, 10 * 17, 1 * 17, 2 * 17, 3 * 17], 'the last stored row is the top one');
});

t('bmp decoder: 24-bit BGR, bottom-up, padded rows', () => {
  const bytes = handMadeBmp({ headerSize: 40, width: 1, height: 2, bitsPerPixel: 24, rows: [[1, 2, 3], [4, 5, 6]] });
  assert.equal([...decodeBmp(bytes).data], [6, 5, 4, 3, 2, 1]);
});

t('bmp decoder: 32-bit BI_RGB ignores the 4th byte; BI_BITFIELDS reads masks after an info header or in a V5 header', () => {
  const rgb = handMadeBmp({ headerSize: 40, width: 2, height: -1, bitsPerPixel: 32, rows: [[1, 2, 3, 99, 4, 5, 6, 0]] });
  const a = decodeBmp(rgb);
  assert.equal([a.channels, ...a.data], [3, 3, 2, 1, 6, 5, 4]);

  // Unusual layout: R in the low byte, B high; no alpha.
  const fields = handMadeBmp({ headerSize: 40, width: 1, height: 1, bitsPerPixel: 32, compression: 3, masks: [0xff, 0xff00, 0xff0000], rows: [[10, 20, 30, 40]] });
  const b = decodeBmp(fields);
  assert.equal([b.channels, ...b.data], [3, 10, 20, 30]);

  const v5 = handMadeBmp({ headerSize: 124, width: 1, height: -1, bitsPerPixel: 32, compression: 3, masks: [0xff0000, 0xff00, 0xff, 0xff000000], rows: [[30, 20, 10, 128]] });
  const c = decodeBmp(v5);
  assert.equal([c.channels, ...c.data], [4, 10, 20, 30, 128]);
});

t('bmp decoder: 16-bit 5-6-5 bit fields widen to 8 bits', () => {
  // Pure red (0xf800) and a mid green (32 of 63 → 130).
  const bytes = handMadeBmp({ headerSize: 40, width: 2, height: 1, bitsPerPixel: 16, compression: 3, masks: [0xf800, 0x07e0, 0x001f], rows: [[0x00, 0xf8, 0x00, 0x04]] });
  assert.equal([...decodeBmp(bytes).data], [255, 0, 0, 0, Math.round((32 * 255) / 63), 0]);
});

t('a BMP is recognised by its signature whatever its extension', async () => {
  const path = join(dir, 'really-a-bmp.png');
  const data = random8(W * H * 3, 7);
  writeFileSync(path, encodeBmp(data, W, H, 3));
  assert.equal([...(await readImage(path)).data], [...data]);
});

/** Asserts that reading `path` fails with a message matching `pattern` (an ImageError unless `cls`). */
const readFails = (path: string, pattern: RegExp, cls: new (...args: never[]) => Error = ImageError) => assertRejects(() => readImage(path), pattern, cls);

t('errors: a truncated BMP and a file that is no image, each naming the file', async () => {
  const whole = join(dir, 'c3-8.bmp');
  const cut = join(dir, 'truncated.bmp');
  writeFileSync(cut, readFileSync(whole).subarray(0, 100));
  await readFails(cut, /truncated\.bmp: truncated BMP: 7×5 at 24 bits needs \d+ bytes, the file has 100/);

  const headerOnly = join(dir, 'header-only.bmp');
  writeFileSync(headerOnly, readFileSync(whole).subarray(0, 20));
  await readFails(headerOnly, /header-only\.bmp: truncated BMP/, Error);

  const text = join(dir, 'notes.png');
  writeFileSync(text, 'not an image at all');
  await readFails(text, /notes\.png: cannot be read as an image/);

  await readFails(join(dir, 'missing.bmp'), /missing\.bmp: file not found/, Error);
});

t('errors: 16-bit data cannot be written as BMP or JPEG; unknown extensions are refused', async () => {
  for (const name of ['x.bmp', 'x.jpg', 'x.gif'])
    await assertRejects(() => writeImage(join(dir, name), new Uint16Array(W * H), W, H, 1), new RegExp(`x\\.${name.slice(2)}: (16-bit data cannot be written|unknown image extension)`), ImageError);
});

t.run();
