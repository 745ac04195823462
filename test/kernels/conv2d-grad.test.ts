/**
 * The convolution's gradients (src/kernels/conv2d.ts, conv2d-grad.ts), plain and routed: the catalogue's gradient
 * cases (src/check/cases/conv2d.ts) against float64 on every path (subgroups with 8- and 16-channel blocks and shared
 * rows, vec4 rows when the width is a multiple of 4 and not, the portable kernels), zeros for unused experts, and
 * finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { familyTest } from '../helpers/compare.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences } from '../helpers/conv.ts';
import { convGradientFamily } from '../../src/check/cases/conv2d.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { routedConv2d, sum, mul } from '../../src/ops/index.ts';

const t = suite('conv2d-grad');
const rng = new Rng(11);

t('conv2d weight and bias gradients pass the finite-difference check (with and without relu)', async () => {
  await gpu();
  await checkConvFiniteDifferences(rng, [1, 2]);
});

familyTest(t, 'conv2d and routedConv2d input, weight and bias gradients match float64 (wide channel blocks 13→17 and 20→9, routed, channel slabs), on every kernel path', convGradientFamily);

t('routedConv2d weight and bias gradients: per-expert weights, zero for unused experts, finite differences', async () => {
  await gpu();
  const { table, shapes, inputs } = await checkRoutedFiniteDifferences([1, 2]);
  const [x, w, b] = inputs.map((d, i) => {
    const p = Tensor.fromArray(d, shapes[i]);
    p.requiresGrad = true;
    return p;
  });
  const loss = tidy(() => sum(mul(routedConv2d(x, w, b, table), routedConv2d(x, w, b, table))));
  backward(loss);
  const dw = await w.grad!.data();
  const db = await b.grad!.data();
  const per = 3 * 2 * 3 * 3;
  assert.ok(dw.subarray(per, 2 * per).every((v) => v === 0), 'expert 1 was never chosen: zero weight gradient');
  assert.ok(db.subarray(3, 6).every((v) => v === 0), 'expert 1 was never chosen: zero bias gradient');
  assert.ok(dw.subarray(0, per).some((v) => v !== 0) && dw.subarray(2 * per).some((v) => v !== 0), 'chosen experts get gradients');
  for (const v of [loss, x, w, b, table]) v.dispose();
});

t.run();
