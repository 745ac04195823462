/** Differentiable reshape (no copy). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((n, d) => n * d, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (resolved.reduce((n, d) => n * d, 1) !== x.size) throw new Error(`reshape: [${x.shape}] cannot become [${shape}]`);
  const out = x.view(resolved);
  const inShape = x.shape;
  return record('reshape', [x], out, { grads: [(dy) => dy.view(inShape)] });
}
