/** Differentiable losses: L1 (plain and masked) and MoE-Fusion's fusion losses (docs/moe-fusion.md §5). */
import { shapeSize, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, broadcastShape, unaryMapKernel } from '../kernels/elementwise.ts';
import { sumKernel } from '../kernels/reduce.ts';
import { add, addScalar, mul, neg, scale } from './arithmetic.ts';
import { maximum } from './activations.ts';
import { sobelGradient } from './sobel.ts';
import { sumTo } from './reduce.ts';

/** mean|a − b| over the broadcast shape (a scalar), as F.l1_loss; gradient sign(a − b)/n (0 at ties). */
export function l1Loss(a: Tensor, b: Tensor): Tensor {
  const n = shapeSize(broadcastShape(a.shape, b.shape));
  const out = tidy(() => {
    const diff = binaryMapKernel('abs(a - b)', a, b, 0, 'abs_diff');
    return unaryMapKernel('x * p.s0', sumKernel(diff, [...diff.shape.keys()]), 1 / n, 0, 'l1_mean');
  });
  return record(
    'l1_loss',
    [a, b],
    out,
    ([g]) => {
      // g is a scalar tensor on the GPU: sign(a − b) · g / n, then reduced to each operand's shape.
      const gs = binaryMapKernel('a * b * p.s0', binaryMapKernel('sign(a - b)', a, b, 0, 'l1_sign'), g!, 1 / n, 'l1_grad');
      return [sumTo(gs, a.shape), sumTo(unaryMapKernel('-x', gs, 0, 0, 'neg'), b.shape)];
    },
    [a, b],
  );
}

/** mean|m·a − m·b| over all elements of the broadcast shape (m broadcast, e.g. a (B,1,H,W) mask). */
export function maskedL1Loss(a: Tensor, b: Tensor, m: Tensor): Tensor {
  return tidy(() => l1Loss(mul(m, a), mul(m, b)));
}

/** MoE-Fusion's gradient loss, unweighted: mean|∇F − max(∇vis, ∇ir)| with ∇ the Sobel magnitude. */
export function gradientLoss(fused: Tensor, vis: Tensor, ir: Tensor): Tensor {
  return tidy(() => l1Loss(sobelGradient(fused), maximum(sobelGradient(vis), sobelGradient(ir))));
}

/**
 * MoE-Fusion's object-aware pixel loss: mean|M·F − M·max(vis, ir)| + mean|(1−M)·F − (1−M)·(vis + ir)/2|,
 * M = 1 inside ground-truth boxes (broadcast over channels).
 */
export function pixelLoss(fused: Tensor, vis: Tensor, ir: Tensor, mask: Tensor): Tensor {
  return tidy(() => {
    const foreground = maskedL1Loss(fused, maximum(vis, ir), mask);
    const background = maskedL1Loss(fused, scale(add(vis, ir), 0.5), addScalar(neg(mask), 1));
    return add(foreground, background);
  });
}
