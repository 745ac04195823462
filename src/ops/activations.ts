/** Differentiable pointwise choices: maximum, minimum, clamp (the one-input functions are in pointwise.ts). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel } from '../kernels/elementwise.ts';
import { maxShareExpr, minShareExpr } from '../kernels/activations.ts';
import { sumTo } from './reduce.ts';

/** The gradients of a pointwise choice between a and b, given the share of g that goes to a. */
function choiceGrads(g: Tensor, a: Tensor, b: Tensor, shareExpr: string, label: string): [Tensor, Tensor] {
  const share = binaryMapKernel(shareExpr, a, b, 0, `${label}_share`);
  const ga = binaryMapKernel('a * b', g, share, 0, `${label}_grad`);
  const gb = binaryMapKernel('a * (1.0 - b)', g, share, 0, `${label}_grad`);
  return [sumTo(ga, a.shape), sumTo(gb, b.shape)];
}

/** Elementwise max with broadcasting; at ties each operand gets half the gradient (torch.maximum). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('max(a, b)', a, b, 0, 'maximum');
  return record('maximum', [a, b], out, ([g]) => choiceGrads(g!, a, b, maxShareExpr('a', 'b'), 'maximum'), [a, b]);
}

/** Elementwise min with broadcasting; at ties each operand gets half the gradient (torch.minimum). */
export function minimum(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('min(a, b)', a, b, 0, 'minimum');
  return record('minimum', [a, b], out, ([g]) => choiceGrads(g!, a, b, minShareExpr('a', 'b'), 'minimum'), [a, b]);
}

/** min(max(x, lo), hi); the gradient passes where lo ≤ x ≤ hi (bounds included, as torch.clamp). */
export function clamp(x: Tensor, lo = -Infinity, hi = Infinity): Tensor {
  const out = unaryMapKernel('min(max(x, p.s0), p.s1)', x, lo, hi, 'clamp');
  return record(
    'clamp',
    [x],
    out,
    ([g]) => {
      const pass = unaryMapKernel('select(0.0, 1.0, x >= p.s0 && x <= p.s1)', x, lo, hi, 'clamp_mask');
      return [binaryMapKernel('a * b', g!, pass, 0, 'clamp_grad')];
    },
    [x],
  );
}
