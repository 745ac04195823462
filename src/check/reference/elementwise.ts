/** Float64 references of the elementwise kernels (src/kernels/elementwise.ts): shapes and NumPy broadcasting. */
import { contiguousStrides as strides } from '../../kernels/reduce.ts';

export { strides };

export type Shape = readonly number[];

export function size(shape: Shape): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Elementwise binary op with NumPy broadcasting. */
export function broadcastBinary(a: ArrayLike<number>, as: Shape, b: ArrayLike<number>, bs: Shape, f: (x: number, y: number) => number): { data: Float64Array; shape: number[] } {
  const n = Math.max(as.length, bs.length);
  const shape: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = as[as.length - n + i] ?? 1;
    const db = bs[bs.length - n + i] ?? 1;
    shape.push(Math.max(da, db));
  }
  const out = new Float64Array(size(shape));
  const ost = strides(shape);
  const ast = strides(as);
  const bst = strides(bs);
  for (let i = 0; i < out.length; i++) {
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < n; d++) {
      const c = Math.floor(i / ost[d]) % shape[d];
      const ja = d - (n - as.length);
      const jb = d - (n - bs.length);
      if (ja >= 0 && as[ja] !== 1) ia += c * ast[ja];
      if (jb >= 0 && bs[jb] !== 1) ib += c * bst[jb];
    }
    out[i] = f(a[ia], b[ib]);
  }
  return { data: out, shape };
}
