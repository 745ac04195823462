/** Differentiable reductions: sum and mean over axes (or all), and sumTo for broadcasting backward. */
import { Tensor, sameShape } from '../tensor.ts';
import { record } from '../autograd.ts';
import { sumAxes } from '../../kernels/reduce.ts';
import { binaryMap } from '../../kernels/elementwise.ts';
import { unaryMap } from '../../kernels/elementwise.ts';

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
  const raw = sumAxes(x, ax);
  let out = raw;
  const shape = keptShape(x.shape, ax, keepDims);
  if (!sameShape(raw.shape, shape)) {
    out = raw.view(shape);
    raw.dispose();
  }
  return record('sum', [x], out, ([g]) => [expandTo(g!, x.shape)]);
}

/** Mean over axes (all by default). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normAxes(x.rank, axes);
  const count = ax.reduce((n, a) => n * x.shape[a], 1);
  const s = sumAxes(x, ax);
  const out = unaryMap('x * p.s0', s, 1 / count, 0, 'mean');
  s.dispose();
  const shape = keptShape(x.shape, ax, keepDims);
  const shaped = sameShape(out.shape, shape) ? out : out.view(shape);
  if (shaped !== out) out.dispose();
  return record('mean', [x], shaped, ([g]) => {
    const e = expandTo(g!, x.shape);
    const r = unaryMap('x * p.s0', e, 1 / count, 0, 'mean_grad');
    e.dispose();
    return [r];
  });
}

/** Broadcasts g (whose shape is `shape` with some dimensions reduced to 1 or removed) back to `shape`. */
export function expandTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.alias();
  // Reinsert reduced dimensions as 1, then broadcast by adding to zeros.
  let shaped = g;
  if (g.rank !== shape.length) {
    const ones = new Array(shape.length).fill(1);
    let j = g.rank - 1;
    for (let i = shape.length - 1; i >= 0 && j >= 0; i--) if (g.shape[j] === shape[i] || shape[i] === 1) ones[i] = g.shape[j--];
    shaped = g.view(ones);
  }
  const zeros = Tensor.zeros(shape);
  const out = binaryMap('a + b', zeros, shaped, 0, 'expand');
  zeros.dispose();
  if (shaped !== g) shaped.dispose();
  return out;
}

/** Sums g over the dimensions that broadcasting expanded, giving a tensor of `shape`. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g.alias();
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = sumAxes(g, axes);
  const out = s.view(shape);
  s.dispose();
  return out;
}
