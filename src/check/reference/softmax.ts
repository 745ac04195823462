/** Float64 references of the softmax kernel (src/kernels/softmax.ts). */
import { strides, type Shape } from './elementwise.ts';

/** Softmax along `axis` (negative: from the end) of a row-major tensor of any rank. */
export function refSoftmaxAxis(x: ArrayLike<number>, shape: Shape, axis: number): Float64Array {
  const a = axis < 0 ? axis + shape.length : axis;
  const st = strides(shape);
  const want = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (Math.floor(i / st[a]) % shape[a] !== 0) continue; // i is the first element of its line
    let m = -Infinity;
    for (let k = 0; k < shape[a]; k++) m = Math.max(m, x[i + k * st[a]]);
    let s = 0;
    for (let k = 0; k < shape[a]; k++) s += Math.exp(x[i + k * st[a]] - m);
    for (let k = 0; k < shape[a]; k++) want[i + k * st[a]] = Math.exp(x[i + k * st[a]] - m) / s;
  }
  return want;
}

/** The softmax backward along `axis`: dx = y·(g − Σ_line g·y), for the softmax output y and output gradient g. */
export function refSoftmaxGradAxis(y: ArrayLike<number>, g: ArrayLike<number>, shape: Shape, axis: number): Float64Array {
  const a = axis < 0 ? axis + shape.length : axis;
  const st = strides(shape);
  const dx = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    if (Math.floor(i / st[a]) % shape[a] !== 0) continue;
    let dot = 0;
    for (let k = 0; k < shape[a]; k++) dot += g[i + k * st[a]] * y[i + k * st[a]];
    for (let k = 0; k < shape[a]; k++) dx[i + k * st[a]] = y[i + k * st[a]] * (g[i + k * st[a]] - dot);
  }
  return dx;
}
