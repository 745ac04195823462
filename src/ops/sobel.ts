/** Differentiable Sobel gradient magnitude, the edge measure of MoE-Fusion's gradient loss. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { sobelGradKernel, sobelKernel } from '../kernels/sobel.ts';

/** |Sobel_x ⋆ x| + |Sobel_y ⋆ x| per (H, W) plane, zero padding 1 (F.conv2d cross-correlation). */
export function sobelGradient(x: Tensor): Tensor {
  const out = sobelKernel(x);
  return record('sobel_gradient', [x], out, { saved: { x }, grads: [(dy, { x }) => sobelGradKernel(x, dy)] });
}
