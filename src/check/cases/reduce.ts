/**
 * Sum cases (src/kernels/reduce.ts) over sets of axes: single and several axes, all of them, size-1 axes between
 * reduced or kept ones (the kernel merges neighbouring axes of one kind).
 */
import { Tensor } from '../../tensor/tensor.ts';
import { noGrad, tidy } from '../../tensor/engine.ts';
import { sum } from '../../ops/index.ts';
import { sumAxes } from '../reference/reduce.ts';
import { compareTensor, family, FORWARD_TOLERANCE, size, type CaseFlags, type Timing } from './family.ts';

export interface SumCase extends CaseFlags {
  shape: number[];
  axes: number[];
}

export const SUM_CASES: SumCase[] = [
  ...[[0], [1], [3], [1, 2], [0, 3], [0, 1, 2, 3], [2, 3]].map((axes) => ({ shape: [3, 7, 11, 5], axes })),
  ...[[0, 2], [0, 4], [1, 3], [0, 1, 2], [2, 3, 4]].map((axes) => ({ shape: [2, 1, 3, 1, 4], axes })),
  { shape: [3, 5, 6, 7], axes: [0, 2], selftest: true, quick: true },
];

const sumTiming: Timing<SumCase> = {
  inputs: (c, rng) => [Tensor.fromArray(rng.uniform(size(c.shape)), c.shape)],
  run: (c, [x]) => sum(x, c.axes),
  cost: (c) => ({ unit: 'byte', amount: 4 * size(c.shape) }),
  working: (w, h) => [{ shape: [1, 160, h, w], axes: [0, 1, 2, 3] }],
};

export const sumFamily = family('sum over axes', 'single', 110, SUM_CASES, (c) => `[${c.shape}] over ${c.axes}`, async (c, rng) => {
  const x = rng.uniform(size(c.shape));
  const s = noGrad(() => tidy(() => sumTiming.run(c, [Tensor.fromArray(x, c.shape)]) as Tensor));
  const list = await compareTensor('sum', s, c.shape.filter((_, i) => !c.axes.includes(i)), sumAxes(x, c.shape, c.axes), c.tol ?? FORWARD_TOLERANCE);
  s.dispose();
  return list;
}, sumTiming);
