/** Differentiable concatenation and slicing along any axis (tensors larger than one storage binding work). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { concatKernel, sliceKernel, sliceGradKernel } from '../kernels/concat.ts';

/** torch.cat(tensors, axis). */
export function concat(tensors: Tensor[], axis: number): Tensor {
  const out = concatKernel(tensors, axis);
  const a = axis < 0 ? axis + out.rank : axis;
  let end = 0;
  const ranges = tensors.map((t) => [end, (end += t.shape[a])]);
  return record('concat', tensors, out, { grads: ranges.map(([from, to]) => (dy: Tensor) => sliceKernel(dy, a, from, to)) });
}

/** x[..., start:end, ...] along `axis` (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const out = sliceKernel(x, axis, start, end);
  const a = axis < 0 ? axis + x.rank : axis;
  const shape = x.shape;
  return record('slice', [x], out, { grads: [(dy) => sliceGradKernel(dy, shape, a, start)] });
}
