/** Differentiable pointwise functions: sigmoid, exp, log, softplus, abs, maximum, minimum, clamp. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel } from '../kernels/elementwise.ts';
import { maxShareExpr, minShareExpr, sigmoidExpr, softplusExpr } from '../kernels/activations.ts';
import { sumTo } from './reduce.ts';

export function sigmoid(x: Tensor): Tensor {
  const out = unaryMapKernel(sigmoidExpr('x'), x, 0, 0, 'sigmoid');
  return record('sigmoid', [x], out, ([g]) => [binaryMapKernel('a * b * (1.0 - b)', g!, out, 0, 'sigmoid_grad')], [out]);
}

export function exp(x: Tensor): Tensor {
  const out = unaryMapKernel('exp(x)', x, 0, 0, 'exp');
  return record('exp', [x], out, ([g]) => [binaryMapKernel('a * b', g!, out, 0, 'exp_grad')], [out]);
}

export function log(x: Tensor): Tensor {
  const out = unaryMapKernel('log(x)', x, 0, 0, 'log');
  return record('log', [x], out, ([g]) => [binaryMapKernel('a / b', g!, x, 0, 'log_grad')], [x]);
}

/** log(1 + eˣ), computed as max(x,0) + log1p(e^−|x|). */
export function softplus(x: Tensor): Tensor {
  const out = unaryMapKernel(softplusExpr('x'), x, 0, 0, 'softplus');
  return record('softplus', [x], out, ([g]) => [binaryMapKernel(`a * ${sigmoidExpr('b')}`, g!, x, 0, 'softplus_grad')], [x]);
}

/** |x|, with gradient sign(x) (0 at 0, as PyTorch). */
export function abs(x: Tensor): Tensor {
  const out = unaryMapKernel('abs(x)', x, 0, 0, 'abs');
  return record('abs', [x], out, ([g]) => [binaryMapKernel('a * sign(b)', g!, x, 0, 'abs_grad')], [x]);
}

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
