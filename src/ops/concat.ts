/** Differentiable concatenation and slicing along any axis (tensors larger than one storage binding work). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { concatKernel, sliceKernel, sliceGradKernel } from '../kernels/concat.ts';

/** torch.cat(tensors, axis). */
export function concat(tensors: Tensor[], axis: number): Tensor {
  const out = concatKernel(tensors, axis);
  const a = axis < 0 ? axis + out.rank : axis;
  return record('concat', tensors, out, ([g]) => {
    let start = 0;
    return tensors.map((t) => {
      const end = start + t.shape[a];
      const gi = t.requiresGrad ? sliceKernel(g!, a, start, end) : null;
      start = end;
      return gi;
    });
  });
}

/** x[..., start:end, ...] along `axis` (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const out = sliceKernel(x, axis, start, end);
  const a = axis < 0 ? axis + x.rank : axis;
  return record('slice', [x], out, ([g]) => [sliceGradKernel(g!, x.shape, a, start)]);
}
