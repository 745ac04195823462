/** Differentiable bilinear resizing (align_corners=True, as PyTorch's F.interpolate). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { resizeBilinearGradKernel, resizeBilinearKernel } from '../kernels/resize.ts';

/** x (N, C, H, W) → (N, C, outH, outW), F.interpolate(mode='bilinear', align_corners=True). */
export function resizeBilinear(x: Tensor, outH: number, outW: number): Tensor {
  const out = resizeBilinearKernel(x, outH, outW);
  const shape = x.shape;
  return record('resize_bilinear', [x], out, { grads: [(dy) => resizeBilinearGradKernel(dy, shape)] });
}

/** The output size F.interpolate(scale_factor=s) gives: floor(size·s) per dimension. */
export function scaledSize(h: number, w: number, s: number): [number, number] {
  return [Math.floor(h * s), Math.floor(w * s)];
}
