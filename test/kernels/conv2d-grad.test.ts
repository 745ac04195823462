/**
 * The convolution's weight and bias gradients (src/kernels/conv2d-grad.ts), plain and routed, against float64
 * (src/check/reference/conv2d-grad.ts) on every path (subgroups with 8- and 16-channel blocks, vec4 rows when the
 * width is a multiple of 4 and not, the portable kernel), zeros for unused experts, and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences, convGradients, forEachConvMode, WIDE_CHANNEL_CASES } from '../helpers/conv.ts';
import { refConvWeightGrad } from '../../src/check/reference/conv2d-grad.ts';
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

t('wide channel blocks (13→17, 20→9, routed): weight and bias gradients match float64, subgroup kernels and fallback', async () => {
  await gpu();
  await forEachConvMode(async (mode) => {
    for (const c of WIDE_CHANNEL_CASES) {
      const [name, xShape, E, Cout, K, tbl] = c;
      const { x, r, dw, db } = await convGradients(c, rng);
      const want = refConvWeightGrad(x, xShape, E, Cout, K, tbl, r);
      assertClose(dw, want.dw, { what: `${name} (${mode}) dw` });
      assertClose(db, want.db, { what: `${name} (${mode}) db` });
    }
  });
});

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
