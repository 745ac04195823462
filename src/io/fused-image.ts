/**
 * A fused image and every form a user may want it in, each in one call: gray floats, 8- or 16-bit pixels (gray, or
 * colour with the visible image's chroma), ImageData-like RGBA, sharp's raw form, encoded PNG/JPEG bytes.
 */
import type { Image, ImageChannels } from './image-types.ts';
import type { ImageDataLike, RawPixels } from './pixels.ts';
import { recolor, to16bit, to8bit } from './color.ts';
import { encodePixels, type EncodedFormat } from './codec.ts';
import { applyRange, DEFAULT_RANGE, type OutputRange } from './output-range.ts';

export class FusedImage {
  constructor(
    readonly width: number,
    readonly height: number,
    /** The network's output, row-major, unclamped (the reference clamps to [0,1] only when saving). */
    readonly data: Float32Array,
    /** The visible image whose chroma colour output takes; null for gray output. */
    private readonly colorSource: Image | null = null,
    /** How `data` becomes the output's [0,1] (io/output-range.ts): clamped, or stretched to the full range. */
    readonly range: OutputRange = DEFAULT_RANGE,
  ) {}

  /** 3 for colour output (the fused image as luma with the visible image's chroma), else 1. */
  get channels(): 1 | 3 {
    return this.colorSource ? 3 : 1;
  }

  /** Gray values in [0,1] under the output range. */
  gray(): Float32Array {
    return applyRange(this.data, this.range);
  }

  /** Interleaved pixels (`channels` per pixel) at 8 bits, or 16 with depth 16. */
  pixels(depth: 8 | 16 = 8): Uint8Array | Uint16Array {
    const gray = this.gray();
    if (this.colorSource) return recolor(gray, this.colorSource, depth);
    return depth === 16 ? to16bit(gray) : to8bit(gray);
  }

  /** RGBA bytes as a browser's ImageData holds them (alpha 255). */
  toImageData(): ImageDataLike {
    const px = this.pixels(8);
    const c = this.channels;
    const n = this.width * this.height;
    const data = new Uint8ClampedArray(4 * n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) data[4 * i + k] = px[c * i + (c === 1 ? 0 : k)];
      data[4 * i + 3] = 255;
    }
    return { width: this.width, height: this.height, data };
  }

  /** sharp's raw form: `sharp(r.data, { raw: r.info })` continues a sharp pipeline. */
  toRaw(depth: 8 | 16 = 8): RawPixels<1 | 3> {
    return { data: this.pixels(depth), info: { width: this.width, height: this.height, channels: this.channels } };
  }

  /** Encoded PNG (lossless; 16 bits with depth 16 in Node) or JPEG (8 bits, quality 0-100). */
  encode(format: EncodedFormat, opts: { depth?: 8 | 16; quality?: number } = {}): Promise<Uint8Array> {
    const depth = format === 'jpeg' ? 8 : (opts.depth ?? 8);
    return encodePixels(this.pixels(depth), this.width, this.height, this.channels as ImageChannels, format, opts.quality ?? 95);
  }

  toPNG(depth: 8 | 16 = 8): Promise<Uint8Array> {
    return this.encode('png', { depth });
  }

  toJPEG(quality = 95): Promise<Uint8Array> {
    return this.encode('jpeg', { quality });
  }
}
