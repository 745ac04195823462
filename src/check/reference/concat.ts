/** Float64 references of concatenation and slicing (src/kernels/concat.ts). */
import { strides, type Shape } from './elementwise.ts';

/** Concatenation of row-major arrays along `axis` (non-negative). */
export function refConcat(parts: ArrayLike<number>[], shapes: Shape[], axis: number): Float64Array {
  const outer = shapes[0].slice(0, axis).reduce((n, d) => n * d, 1);
  const blocks = shapes.map((s) => s.slice(axis).reduce((n, d) => n * d, 1));
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (let k = 0; k < outer; k++)
    parts.forEach((p, i) => {
      for (let r = 0; r < blocks[i]; r++) out[o++] = p[k * blocks[i] + r];
    });
  return out;
}

/** The elements whose coordinate along `axis` (negative: from the end) lies in [start, end), in order. */
export function refSlice(x: ArrayLike<number>, shape: Shape, axis: number, start: number, end: number): Float64Array {
  const a = axis < 0 ? axis + shape.length : axis;
  const st = strides(shape);
  const want: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / st[a]) % shape[a];
    if (c >= start && c < end) want.push(x[i]);
  }
  return Float64Array.from(want);
}
