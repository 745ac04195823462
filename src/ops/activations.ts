/** Differentiable pointwise choices: maximum, minimum, clamp (the one-input functions are in pointwise.ts). */
import type { Tensor } from '../tensor/tensor.ts';
import { once, record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel } from '../kernels/elementwise.ts';
import { maxShareExpr, minShareExpr } from '../kernels/activations.ts';
import { sumTo } from './reduce.ts';

/** A pointwise choice between a and b (`fn(a, b)` in WGSL); `shareExpr` is the share of the gradient that goes to a. */
function choice(name: string, fn: string, shareExpr: string, a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel(`${fn}(a, b)`, a, b, 0, name);
  return record(name, [a, b], out, {
    saved: { a, b },
    shared: (dy, { a, b }) => ({ dy, share: once(() => binaryMapKernel(shareExpr, a, b, 0, `${name}_share`)) }),
    grads: [
      ({ dy, share }, { a }) => sumTo(binaryMapKernel('a * b', dy, share(), 0, `${name}_grad`), a.shape),
      ({ dy, share }, { b }) => sumTo(binaryMapKernel('a * (1.0 - b)', dy, share(), 0, `${name}_grad`), b.shape),
    ],
  });
}

/** Elementwise max with broadcasting; at ties each operand gets half the gradient (torch.maximum). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return choice('maximum', 'max', maxShareExpr('a', 'b'), a, b);
}

/** Elementwise min with broadcasting; at ties each operand gets half the gradient (torch.minimum). */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return choice('minimum', 'min', minShareExpr('a', 'b'), a, b);
}

/** min(max(x, lo), hi); the gradient passes where lo ≤ x ≤ hi (bounds included, as torch.clamp). */
export function clamp(x: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  const out = unaryMapKernel('min(max(x, p.s0), p.s1)', x, lo, hi, 'clamp');
  return record('clamp', [x], out, {
    saved: { x },
    grads: [
      (dy, { x }) => {
        const pass = unaryMapKernel('select(0.0, 1.0, x >= p.s0 && x <= p.s1)', x, lo, hi, 'clamp_mask');
        return binaryMapKernel('a * b', dy, pass, 0, 'clamp_grad');
      },
    ],
  });
}
