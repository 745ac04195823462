/** Differentiable elementwise arithmetic with broadcasting, scalar ops and activations. */
import { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel, fillKernel } from '../kernels/elementwise.ts';
import { sumTo } from './reduce.ts';

/** Gradient of a broadcast operand: g reduced to the operand's shape (g itself is not consumed). */
function reduceGrad(g: Tensor, like: Tensor): Tensor {
  return sumTo(g, like.shape);
}

export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a + b', a, b, 0, 'add');
  return record('add', [a, b], out, ([g], [na, nb]) => [na ? reduceGrad(g!, a) : null, nb ? reduceGrad(g!, b) : null]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a - b', a, b, 0, 'sub');
  return record('sub', [a, b], out, ([g], [na, nb]) => [
    na ? reduceGrad(g!, a) : null,
    nb ? reduceGrad(unaryMapKernel('-x', g!, 0, 0, 'neg'), b) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a * b', a, b, 0, 'mul');
  return record(
    'mul',
    [a, b],
    out,
    ([g], [na, nb]) => [
      na ? reduceGrad(binaryMapKernel('a * b', g!, b, 0, 'mul_grad'), a) : null,
      nb ? reduceGrad(binaryMapKernel('a * b', g!, a, 0, 'mul_grad'), b) : null,
    ],
    [a, b],
  );
}

export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a / b', a, b, 0, 'div');
  return record(
    'div',
    [a, b],
    out,
    ([g], [na, nb]) => {
      const ga = na ? reduceGrad(binaryMapKernel('a / b', g!, b, 0, 'div_grad'), a) : null;
      if (!nb) return [ga, null];
      const q = binaryMapKernel('a / b', out, b, 0, 'div_grad'); // a / b²
      return [ga, reduceGrad(binaryMapKernel('-a * b', g!, q, 0, 'div_grad'), b)];
    },
    [b, out],
  );
}

/** x · c for a constant c. */
export function scale(x: Tensor, c: number): Tensor {
  const out = unaryMapKernel('x * p.s0', x, c, 0, 'scale');
  return record('scale', [x], out, ([g]) => [unaryMapKernel('x * p.s0', g!, c, 0, 'scale')]);
}

/** x + c for a constant c. */
export function addScalar(x: Tensor, c: number): Tensor {
  const out = unaryMapKernel('x + p.s0', x, c, 0, 'add_scalar');
  return record('add_scalar', [x], out, ([g]) => [g!.alias()]);
}

export function neg(x: Tensor): Tensor {
  return scale(x, -1);
}

export function relu(x: Tensor): Tensor {
  const out = unaryMapKernel('max(x, 0.0)', x, 0, 0, 'relu');
  return record('relu', [x], out, ([g]) => [binaryMapKernel('select(0.0, a, b > 0.0)', g!, out, 0, 'relu_grad')], [out]);
}

export function ones(shape: readonly number[]): Tensor {
  return fillKernel(shape, 1);
}

export function zeros(shape: readonly number[]): Tensor {
  return Tensor.zeros(shape);
}

export function full(shape: readonly number[], value: number): Tensor {
  return fillKernel(shape, value);
}
