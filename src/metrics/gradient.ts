/** Spatial frequency (SF) and average gradient (AG). */
import type { Plane } from './plane.ts';

/**
 * SF = sqrt(RF² + CF²). With `denominator: 'differences'` each squared-difference sum is divided by its own
 * count ((M−1)·N vertical, M·(N−1) horizontal, as tang and cddfuse do); with 'pixels' both by M·N (VIFB).
 */
export function spatialFrequency(p: Plane, denominator: 'differences' | 'pixels'): number {
  const { width: w, height: h, data } = p;
  let horizontal = 0;
  let vertical = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x];
      if (x > 0) horizontal += (v - data[y * w + x - 1]) ** 2;
      if (y > 0) vertical += (v - data[(y - 1) * w + x]) ** 2;
    }
  if (denominator === 'pixels') return Math.sqrt((horizontal + vertical) / (w * h));
  return Math.sqrt(horizontal / (h * (w - 1)) + vertical / ((h - 1) * w));
}

/** One derivative of MATLAB `gradient`: central differences inside, one-sided at the ends, 0 if length 1. */
function derivative(data: Float64Array, at: number, index: number, length: number, stride: number): number {
  if (length < 2) return 0;
  if (index === 0) return data[at + stride] - data[at];
  if (index === length - 1) return data[at] - data[at - stride];
  return (data[at + stride] - data[at - stride]) / 2;
}

/**
 * AG = Σ sqrt((gx² + gy²)/2) / denominator, gradients as MATLAB `gradient`; the denominator is (M−1)(N−1)
 * ('interior': tang, VIFB) or M·N ('pixels': cddfuse).
 */
export function averageGradient(p: Plane, denominator: 'interior' | 'pixels'): number {
  const { width: w, height: h, data } = p;
  let sum = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const at = y * w + x;
      const gx = derivative(data, at, x, w, 1);
      const gy = derivative(data, at, y, h, w);
      sum += Math.sqrt((gx * gx + gy * gy) / 2);
    }
  return sum / (denominator === 'interior' ? (w - 1) * (h - 1) : w * h);
}
