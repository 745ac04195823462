/** Differentiable generic losses: L1, plain and masked. */
import { shapeSize, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, broadcastShape, unaryMapKernel } from '../kernels/elementwise.ts';
import { sumKernel } from '../kernels/reduce.ts';
import { mul } from './arithmetic.ts';
import { sumTo } from './reduce.ts';

/** mean|a − b| over the broadcast shape (a scalar), as F.l1_loss; gradient sign(a − b)/n (0 at ties). */
export function l1Loss(a: Tensor, b: Tensor): Tensor {
  const n = shapeSize(broadcastShape(a.shape, b.shape));
  const out = tidy(() => {
    const diff = binaryMapKernel('abs(a - b)', a, b, 0, 'abs_diff');
    return unaryMapKernel('x * p.s0', sumKernel(diff, [...diff.shape.keys()]), 1 / n, 0, 'l1_mean');
  });
  // The incoming gradient is a scalar tensor on the GPU: sign(a − b) · dy / n, then reduced to each operand's shape.
  return record('l1_loss', [a, b], out, {
    saved: { a, b },
    shared: (dy, { a, b }) => binaryMapKernel('a * b * p.s0', binaryMapKernel('sign(a - b)', a, b, 0, 'l1_sign'), dy, 1 / n, 'l1_grad'),
    grads: [(gs, { a }) => sumTo(gs, a.shape), (gs, { b }) => sumTo(unaryMapKernel('-x', gs, 0, 0, 'neg'), b.shape)],
  });
}

/** mean|m·a − m·b| over all elements of the broadcast shape (m broadcast, e.g. a (B,1,H,W) mask). */
export function maskedL1Loss(a: Tensor, b: Tensor, m: Tensor): Tensor {
  return tidy(() => l1Loss(mul(m, a), mul(m, b)));
}
