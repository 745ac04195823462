/**
 * Separable 2-D correlation (MATLAB filter2 / imfilter; the windows used here are symmetric, so correlation
 * and convolution agree). Every 2-D window in these metrics is an outer product of a 1-D one.
 */
import { makePlane, type Plane } from './plane.ts';

/**
 * Normalised 1-D Gaussian of `size` taps. The outer product of two of these equals MATLAB's
 * fspecial('gaussian', size, sigma) whenever no entry falls below eps·max (fspecial zeroes those); that holds
 * for every window the metrics use, and is checked here.
 */
export function gaussianTaps(size: number, sigma: number): Float64Array {
  const half = (size - 1) / 2;
  const taps = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) sum += taps[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
  if (taps[0] * taps[0] < Number.EPSILON) throw new Error(`gaussian ${size}/${sigma}: fspecial would zero its corners`);
  for (let i = 0; i < size; i++) taps[i] /= sum;
  return taps;
}

/** Check for filterValid, which relies on odd, symmetric windows. */
function assertSymmetric(taps: Float64Array): void {
  if (taps.length % 2 !== 1 || taps.some((t, k) => t !== taps[taps.length - 1 - k])) throw new Error('window must be odd-sized and symmetric');
}

export function uniformTaps(size: number): Float64Array {
  return new Float64Array(size).fill(1 / size);
}

/** 'valid' correlation with the separable window taps ⊗ taps: output (H−n+1)×(W−n+1). */
export function filterValid(p: Plane, taps: Float64Array): Plane {
  const n = taps.length;
  const half = n >> 1;
  assertSymmetric(taps);
  const { width, height, data } = p;
  const outW = width - n + 1;
  const outH = height - n + 1;
  if (outW < 1 || outH < 1) throw new Error(`image of ${width}×${height} is smaller than the ${n}×${n} window`);
  // The windows are symmetric and odd-sized: pair taps k and n−1−k to halve the multiplications.
  const rows = new Float64Array(height * outW);
  // Loops ordered tap-outer, pixel-inner in both passes: independent updates, no long dependency chain.
  const tc = taps[half];
  for (let y = 0; y < height; y++) {
    const src = y * width;
    const dst = y * outW;
    for (let x = 0; x < outW; x++) rows[dst + x] = tc * data[src + x + half];
    for (let k = 0; k < half; k++) {
      const t = taps[k];
      const left = src + k;
      const right = src + n - 1 - k;
      for (let x = 0; x < outW; x++) rows[dst + x] += t * (data[left + x] + data[right + x]);
    }
  }
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const dst = y * outW;
    const centre = (y + half) * outW;
    for (let x = 0; x < outW; x++) out[dst + x] = tc * rows[centre + x];
    for (let k = 0; k < half; k++) {
      const t = taps[k];
      const top = (y + k) * outW;
      const bottom = (y + n - 1 - k) * outW;
      for (let x = 0; x < outW; x++) out[dst + x] += t * (rows[top + x] + rows[bottom + x]);
    }
  }
  return makePlane(outW, outH, out);
}

/** 'same' correlation with replicate padding (MATLAB imgaussfilt's default). */
export function filterSameReplicate(p: Plane, taps: Float64Array): Plane {
  const half = (taps.length - 1) / 2;
  const padded = makePlane(p.width + 2 * half, p.height + 2 * half);
  for (let y = 0; y < padded.height; y++) {
    const sy = Math.min(p.height - 1, Math.max(0, y - half));
    for (let x = 0; x < padded.width; x++) {
      const sx = Math.min(p.width - 1, Math.max(0, x - half));
      padded.data[y * padded.width + x] = p.data[sy * p.width + sx];
    }
  }
  return filterValid(padded, taps);
}

/** Every second row and column, starting with the first (MATLAB x(1:2:end, 1:2:end)). */
export function decimate(p: Plane): Plane {
  const w = Math.ceil(p.width / 2);
  const h = Math.ceil(p.height / 2);
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = p.data[2 * y * p.width + 2 * x];
  return makePlane(w, h, out);
}

export function multiply(a: Plane, b: Plane): Plane {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] * b.data[i];
  return makePlane(a.width, a.height, out);
}
