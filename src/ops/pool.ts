/** Differentiable average pooling (F.avg_pool2d with stride = window, no padding). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { avgPoolGradKernel, avgPoolKernel } from '../kernels/pool.ts';

/**
 * x (N, C, H, W) → (N, C, ⌊H/k⌋, ⌊W/k⌋), the mean of each k×k window, stride k: trailing rows and columns that
 * do not fill a window are dropped (and get no gradient). Throws when H < k or W < k.
 */
export function avgPool2d(x: Tensor, k = 2): Tensor {
  const out = avgPoolKernel(x, k);
  const shape = x.shape;
  return record('avg_pool2d', [x], out, { grads: [(dy) => avgPoolGradKernel(dy, shape, k)] });
}
