/** Float64 references of the sum reduction (src/kernels/reduce.ts) and of what ops build on it (mean, variance). */
import { broadcastBinary, size, strides, type Shape } from './elementwise.ts';

/** Sum over axes, without keepdims. */
export function sumAxes(x: ArrayLike<number>, shape: Shape, axes: number[]): Float64Array {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const outShape = kept.map((i) => shape[i]);
  const out = new Float64Array(size(outShape));
  const st = strides(shape);
  const ost = strides(outShape);
  for (let i = 0; i < x.length; i++) {
    let o = 0;
    kept.forEach((d, j) => {
      o += (Math.floor(i / st[d]) % shape[d]) * ost[j];
    });
    out[o] += x[i];
  }
  return out;
}

/** Variance over axes (two-pass: mean, then squared deviations), unbiased (÷ n−1) or biased (÷ n), without keepdims. */
export function refVariance(x: ArrayLike<number>, shape: Shape, axes: number[], unbiased: boolean): Float64Array {
  const n = axes.reduce((p, a) => p * shape[a], 1);
  const means = sumAxes(x, shape, axes).map((v) => v / n);
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const centred = broadcastBinary(x, shape, means, kept, (u, m) => (u - m) ** 2);
  return sumAxes(centred.data, shape, axes).map((v) => v / (unbiased ? n - 1 : n));
}
