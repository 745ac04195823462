/**
 * Pointwise ops from a table: each is its WGSL expression of `x` (the kernel, run by unaryMapKernel) and the
 * expression of its derivative, built from the input x or the output y (whichever it is simpler in); the backward
 * multiplies the incoming gradient by it. Adding such an op is one line here.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel } from '../kernels/elementwise.ts';
import { geluExpr, geluGradExpr, sigmoidExpr, softplusExpr } from '../kernels/activations.ts';

/** f(x), and f′ written with the WGSL expression of x ('x') or of f(x) ('y'). */
function pointwise(name: string, f: string, of: 'x' | 'y', derivative: (v: string) => string): (x: Tensor) => Tensor {
  const backward = `a * (${derivative('b')})`;
  return (x) => {
    const out = unaryMapKernel(f, x, 0, 0, name);
    return record(name, [x], out, {
      saved: { v: of === 'x' ? x : out },
      grads: [(dy, { v }) => binaryMapKernel(backward, dy, v, 0, `${name}_grad`)],
    });
  };
}

// The op table.
export const sigmoid = pointwise('sigmoid', sigmoidExpr('x'), 'y', (y) => `${y} * (1.0 - ${y})`);
export const exp = pointwise('exp', 'exp(x)', 'y', (y) => y);
export const log = pointwise('log', 'log(x)', 'x', (x) => `1.0 / ${x}`);
/** log(1 + eˣ), computed as max(x,0) + log1p(e^−|x|). */
export const softplus = pointwise('softplus', softplusExpr('x'), 'x', sigmoidExpr);
/** |x|, with gradient sign(x) (0 at 0, as PyTorch). */
export const abs = pointwise('abs', 'abs(x)', 'x', (x) => `sign(${x})`);
/** GELU in PyTorch's tanh form (nn.GELU(approximate='tanh')). */
export const gelu = pointwise('gelu', geluExpr('x'), 'x', geluGradExpr);
