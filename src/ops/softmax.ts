/** Differentiable, numerically stable softmax along one axis. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { softmaxGradKernel, softmaxKernel } from '../kernels/softmax.ts';

export function softmax(x: Tensor, axis = -1): Tensor {
  const out = softmaxKernel(x, axis);
  return record('softmax', [x], out, { saved: { out }, grads: [(dy, { out }) => softmaxGradKernel(out, dy, axis)] });
}
