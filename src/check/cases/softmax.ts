/** Softmax cases (src/kernels/softmax.ts) along any axis of (outer, L, inner) layouts: forward and the input gradient. */
import { Tensor } from '../../tensor/tensor.ts';
import { backward } from '../../autograd/tape.ts';
import { softmax } from '../../ops/index.ts';
import { compareValues } from '../compare.ts';
import { refSoftmaxAxis, refSoftmaxGradAxis } from '../reference/softmax.ts';
import { compareTensor, family, FORWARD_TOLERANCE, gradOf, GRADIENT_TOLERANCE, leaf, size, type CaseFlags, type Timing } from './family.ts';

export interface SoftmaxCase extends CaseFlags {
  shape: number[];
  axis: number;
}

export const SOFTMAX_CASES: SoftmaxCase[] = [
  ...[0, 1, 2, 3, -1].map((axis) => ({ shape: [3, 5, 1, 7], axis })),
  ...[0, 1, 2, 3].map((axis) => ({ shape: [2, 9, 3, 5], axis })),
  { shape: [7, 129], axis: -1, selftest: true, quick: true },
  { shape: [1024, 1024], axis: -1, bench: 'only' },
];

const softmaxTiming: Timing<SoftmaxCase> = {
  inputs: (c, rng) => [Tensor.fromArray(rng.uniform(size(c.shape), -4, 4), c.shape)],
  run: (c, [x]) => softmax(x, c.axis),
  cost: (c) => ({ unit: 'byte', amount: 4 * 2 * size(c.shape) }),
};

export const softmaxFamily = family('softmax', 'single', 109, SOFTMAX_CASES, (c) => `[${c.shape}] axis ${c.axis}`, async (c, rng) => {
  const x = rng.uniform(size(c.shape), -4, 4);
  const g = rng.uniform(size(c.shape));
  const xt = leaf(x, c.shape);
  const y = softmaxTiming.run(c, [xt]) as Tensor;
  const want = refSoftmaxAxis(x, c.shape, c.axis);
  const list = await compareTensor('output', y, c.shape, want, c.tol ?? FORWARD_TOLERANCE);
  const seed = Tensor.fromArray(g, c.shape);
  backward(y, seed);
  list.push(compareValues('gradient', await gradOf(xt), refSoftmaxGradAxis(want, g, c.shape, c.axis), GRADIENT_TOLERANCE));
  for (const t of [xt, y, seed]) t.dispose();
  return list;
}, softmaxTiming);
