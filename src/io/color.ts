/**
 * Colour conversions of the fusion pipeline: BT.601 luma (OpenCV's BGR2GRAY, what the reference feeds the network),
 * and BT.601 YCbCr (full range, as OpenCV's YCrCb) for colour output: the fused image replaces Y.
 */
import type { Image as RawImage } from './image-types.ts';

function maxValue(img: RawImage): number {
  return img.bitDepth === 16 ? 65535 : 255;
}

/** Gray in [0,1]: BT.601 luma for colour images (rounded to the source's integer scale as OpenCV does), channel 0 otherwise. */
export function toGray01(img: RawImage, mode: 'luma' | 'first' = 'luma'): Float32Array {
  if (![1, 3, 4].includes(img.channels) || (img.bitDepth !== 8 && img.bitDepth !== 16) || img.data.length !== img.width * img.height * img.channels)
    throw new TypeError(
      `toGray01 needs a decoded image { width, height, channels: 1|3|4, bitDepth: 8|16, data } with width·height·channels values; ` +
        `for ImageData or sharp output pass it to Fuser.fuse directly`,
    );
  const n = img.width * img.height;
  const out = new Float32Array(n);
  const max = maxValue(img);
  const c = img.channels;
  for (let i = 0; i < n; i++) {
    const p = i * c;
    if (c >= 3 && mode === 'luma') {
      const y = 0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2];
      out[i] = Math.round(y) / max;
    } else out[i] = img.data[p] / max;
  }
  return out;
}

/**
 * Replaces the luma of `visible` (RGB) by `fusedY` (values in [0,1], clamped) and returns RGB at 8 bits, or at 16
 * bits with `depth` 16.
 */
export function recolor(fusedY: Float32Array, visible: RawImage, depth: 8 | 16 = 8): Uint8Array | Uint16Array {
  const n = visible.width * visible.height;
  const top = depth === 16 ? 65535 : 255;
  const out = depth === 16 ? new Uint16Array(n * 3) : new Uint8Array(n * 3);
  const scale = top / maxValue(visible);
  const half = (top + 1) / 2;
  const c = visible.channels;
  const q = (v: number) => Math.min(top, Math.max(0, Math.round(v)));
  for (let i = 0; i < n; i++) {
    const r = visible.data[i * c] * scale;
    const g = visible.data[i * c + 1] * scale;
    const b = visible.data[i * c + 2] * scale;
    const y = top * Math.min(1, Math.max(0, fusedY[i]));
    const yv = 0.299 * r + 0.587 * g + 0.114 * b;
    const cb = (b - yv) * 0.564 + half;
    const cr = (r - yv) * 0.713 + half;
    out[3 * i] = q(y + 1.403 * (cr - half));
    out[3 * i + 1] = q(y - 0.714 * (cr - half) - 0.344 * (cb - half));
    out[3 * i + 2] = q(y + 1.773 * (cb - half));
  }
  return out;
}

/** [0,1] floats → 8-bit with clamping and rounding (how the fused image is saved). */
export function to8bit(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(values[i] * 255)));
  return out;
}

/** [0,1] floats → 16-bit with clamping and rounding. */
export function to16bit(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.min(65535, Math.max(0, Math.round(values[i] * 65535)));
  return out;
}
