/** Differentiable reductions: sum and mean over axes (or all), and sumTo for broadcasting backward. */
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import { sumKernel } from '../kernels/reduce.ts';
import { binaryMapKernel, unaryMapKernel } from '../kernels/elementwise.ts';

function normAxes(rank: number, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  return list.map((a) => (a < 0 ? a + rank : a));
}

function keptShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** Sum over axes (all by default). */
export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes(x.rank, axes);
  const out = sumKernel(x, ax).reshaped(keptShape(x.shape, ax, keepDims));
  const shape = x.shape;
  return record('sum', [x], out, { grads: [(dy) => expandTo(dy, shape)] });
}

/** Mean over axes (all by default). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes(x.rank, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const out = tidy(() => unaryMapKernel('x * p.s0', sumKernel(x, ax), 1 / count, 0, 'mean')).reshaped(keptShape(x.shape, ax, keepDims));
  const shape = x.shape;
  return record('mean', [x], out, { grads: [(dy) => unaryMapKernel('x * p.s0', expandTo(dy, shape), 1 / count, 0, 'mean_grad')] });
}

/** Broadcasts g (whose shape is `shape` with some dimensions reduced to 1 or removed) back to `shape`. */
export function expandTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.alias();
  // Reinsert reduced dimensions as 1, then broadcast by adding to zeros.
  // Reinsert dimensions that were removed as 1, then broadcast by adding to zeros.
  const kept = new Array(shape.length).fill(1);
  let j = g.rank - 1;
  for (let i = shape.length - 1; i >= 0 && j >= 0; i--) if (g.shape[j] === shape[i] || shape[i] === 1) kept[i] = g.shape[j--];
  return tidy(() => binaryMapKernel('a + b', Tensor.zeros(shape), g.rank === shape.length ? g : g.view(kept), 0, 'expand'));
}

/** Sums g over the dimensions that broadcasting expanded, giving a tensor of `shape`. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.alias();
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  return sumKernel(g, axes).reshaped(shape);
}
