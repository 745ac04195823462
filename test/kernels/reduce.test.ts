/**
 * The sum reduction (src/kernels/reduce.ts) over any set of axes — one invocation per output, a workgroup tree per
 * output, parts summed by a second pass for long reductions — on the catalogue's cases (src/check/cases/reduce.ts),
 * and mean and variance built on it, against float64 (src/check/reference/reduce.ts); gradients against finite
 * differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, assertFamily } from '../helpers/compare.ts';
import { assertGradchecks } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refVariance, sumAxes } from '../../src/check/reference/reduce.ts';
import { sumFamily } from '../../src/check/cases/reduce.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { mean, mul, sum, variance } from '../../src/ops/index.ts';

const t = suite('reduce');
const rng = new Rng(42);

t('sum and mean over axes match float64, including a long reduction', async () => {
  await gpu();
  const shape = [3, 7, 11, 5];
  const x = rng.uniform(size(shape));
  const xt = Tensor.fromArray(x, shape);
  await assertFamily(sumFamily);
  const m = mean(xt, [1, 3], true);
  assert.equal([...m.shape], [3, 1, 11, 1]);
  const want = sumAxes(x, shape, [1, 3]).map((v) => v / 35);
  assertClose(await m.data(), want, { what: 'mean' });
  m.dispose();
  xt.dispose();
  // 1,000,003 elements: split into parts and summed again.
  const big = rng.uniform(1_000_003);
  const bt = Tensor.fromArray(big, [big.length]);
  const bs = sum(bt);
  let want2 = 0;
  for (const v of big) want2 += v;
  const got = await bs.item();
  assert.ok(Math.abs(got - want2) <= 1e-4 * Math.sqrt(big.length), `long sum ${got} vs ${want2}`);
  bt.dispose();
  bs.dispose();
});

t('variance matches float64 (unbiased and biased, axes, keepDims)', async () => {
  await gpu();
  const shape = [4, 3, 5];
  const x = rng.uniform(size(shape));
  const xt = Tensor.fromArray(x, shape);
  const cases: Array<[number[], boolean, boolean]> = [[[0], true, false], [[1, 2], false, true], [[2], true, true]];
  for (const [axes, unbiased, keepDims] of cases) {
    const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const out = variance(xt, axes, unbiased, keepDims);
    assert.equal([...out.shape], keepDims ? kept : shape.filter((_, i) => !axes.includes(i)));
    assertClose(await out.data(), refVariance(x, shape, axes, unbiased), { what: `variance ${axes} ${unbiased}` });
    out.dispose();
  }
  const all = variance(xt);
  assertClose([await all.item()], refVariance(x, shape, [0, 1, 2], true), { what: 'variance of all' });
  assert.equal([...all.shape], []);
  all.dispose();
  xt.dispose();
});

t('gradients of sum, mean and variance pass the finite-difference check', async () => {
  await gpu();
  await assertGradchecks([
    ['sum axes', ([a]) => sum(a, [0, 2]), [[3, 4, 5]]],
    ['mean keepdims', ([a]) => mean(a, 1, true), [[3, 4, 5]]],
    ['variance', ([x]) => variance(x, [1]), [[3, 6]]],
    ['variance all biased', ([x]) => mul(variance(x, undefined, false), variance(x)), [[7]]],
  ], (n) => rng.awayFromZero(n));
});

t.run();
