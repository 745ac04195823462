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
import { gradcheck } from '../helpers/gradcheck.ts';
import { convGradients, forEachConvMode, ROUTED_TABLE, WIDE_CHANNEL_CASES } from '../helpers/conv.ts';
import { refConvWeightGrad } from '../../src/check/reference/conv2d-grad.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { conv2d, routedConv2d, sum, mul } from '../../src/ops/index.ts';

const t = suite('conv2d-grad');
const rng = new Rng(11);

t('conv2d weight and bias gradients pass the finite-difference check (with and without relu)', async () => {
  await gpu();
  const cases: Array<[string, number[][], boolean, number]> = [
    ['k3 relu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], true, 3],
    ['k3 norelu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], false, 3],
    ['k3', [[1, 5, 4, 6], [3, 5, 3, 3], [3]], false, 3],
    ['k1', [[2, 3, 3, 5], [2, 3, 1, 1], [2]], false, 1],
  ];
  for (const [name, shapes, relu] of cases) {
    const inputs = shapes.map((s) => rng.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
    const r = await gradcheck(([x, w, b]) => conv2d(x, w, b, { relu }), inputs, shapes, { maxChecks: 24, h: relu ? 2e-3 : 1e-2, only: [1, 2] });
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
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
  const table = Tensor.fromArray(ROUTED_TABLE.flat(), [ROUTED_TABLE.length, 2], 'u32');
  const shapes = [[2, 2, 4, 5], [3, 3, 2, 3, 3], [3, 3]];
  // Own generator: inputs chosen once, with no ReLU output within the finite-difference step of its kink.
  const local = new Rng(3);
  const inputs = shapes.map((s) => local.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
  for (const relu of [false, true]) {
    const r = await gradcheck(([x, w, b]) => routedConv2d(x, w, b, table, { relu }), inputs, shapes, { maxChecks: 40, h: relu ? 2e-3 : 1e-2, only: [1, 2] });
    assert.ok(r.ok, `relu=${relu}: ${r.message}`);
  }
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
