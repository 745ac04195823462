/** Differentiable elementwise arithmetic with broadcasting, scalar ops and activations. */
import { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel, fillKernel } from '../kernels/elementwise.ts';
import { sumTo } from './reduce.ts';

// A broadcast operand's gradient is the incoming one summed to the operand's shape (sumTo).

export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a + b', a, b, 0, 'add');
  const [aShape, bShape] = [a.shape, b.shape];
  return record('add', [a, b], out, { grads: [(dy) => sumTo(dy, aShape), (dy) => sumTo(dy, bShape)] });
}

export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a - b', a, b, 0, 'sub');
  const [aShape, bShape] = [a.shape, b.shape];
  return record('sub', [a, b], out, {
    grads: [(dy) => sumTo(dy, aShape), (dy) => sumTo(unaryMapKernel('-x', dy, 0, 0, 'neg'), bShape)],
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a * b', a, b, 0, 'mul');
  return record('mul', [a, b], out, {
    saved: { a, b },
    grads: [
      (dy, { a, b }) => sumTo(binaryMapKernel('a * b', dy, b, 0, 'mul_grad'), a.shape),
      (dy, { a, b }) => sumTo(binaryMapKernel('a * b', dy, a, 0, 'mul_grad'), b.shape),
    ],
  });
}

export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryMapKernel('a / b', a, b, 0, 'div');
  const aShape = a.shape;
  return record('div', [a, b], out, {
    saved: { b, out },
    grads: [
      (dy, { b }) => sumTo(binaryMapKernel('a / b', dy, b, 0, 'div_grad'), aShape),
      (dy, { b, out }) => {
        const q = binaryMapKernel('a / b', out, b, 0, 'div_grad'); // a / b²
        return sumTo(binaryMapKernel('-a * b', dy, q, 0, 'div_grad'), b.shape);
      },
    ],
  });
}

/** x · c for a constant c. */
export function scale(x: Tensor, c: number): Tensor {
  const out = unaryMapKernel('x * p.s0', x, c, 0, 'scale');
  return record('scale', [x], out, { grads: [(dy) => unaryMapKernel('x * p.s0', dy, c, 0, 'scale')] });
}

/** x + c for a constant c. */
export function addScalar(x: Tensor, c: number): Tensor {
  const out = unaryMapKernel('x + p.s0', x, c, 0, 'add_scalar');
  return record('add_scalar', [x], out, { grads: [(dy) => dy.alias()] });
}

export function neg(x: Tensor): Tensor {
  return scale(x, -1);
}

export function relu(x: Tensor): Tensor {
  const out = unaryMapKernel('max(x, 0.0)', x, 0, 0, 'relu');
  return record('relu', [x], out, {
    saved: { out },
    grads: [(dy, { out }) => binaryMapKernel('select(0.0, a, b > 0.0)', dy, out, 0, 'relu_grad')],
  });
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
