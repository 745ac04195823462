/**
 * The gate's split-K linear map (src/kernels/gate-linear.ts): forward over many workgroups and both backward
 * products against float64 (src/check/reference/gate-linear.ts), and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { refGateLinear, refGateLinearGrads } from '../../src/check/reference/gate-linear.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { gateLinear } from '../../src/ops/index.ts';

const t = suite('gate-linear');
const rng = new Rng(2017);

t('gateLinear matches float64 on odd shapes, split over many workgroups', async () => {
  await gpu();
  for (const [B, D, E] of [
    [3, 1001, 5],
    [1, 1, 1],
    [4, 70001, 4],
    [5, 2049, 3],
    [2, 3001, 13],
  ]) {
    const x = rng.uniform(B * D);
    const w = rng.uniform(D * E);
    const out = tidy(() => gateLinear(Tensor.fromArray(x, [B, D]), Tensor.fromArray(w, [D, E])));
    assert.equal([...out.shape], [B, E]);
    assertClose(await out.data(), refGateLinear(x, w, B, D, E), { what: `gateLinear ${B}×${D}×${E}` });
    out.dispose();
  }
});

t('gateLinear with many rows and experts: the partial sums are cut to fit one binding', async () => {
  const e = await gpu();
  // 384 KiB bindings: x (164 KB) and w (328 KB) fit, the 2 parts of 20·40·64 partials (410 KB) would not.
  const [B, D, E] = [20, 2049, 40];
  const x = rng.uniform(B * D);
  const w = rng.uniform(D * E);
  e.rt.bindingLimitForTests = 384 * 1024;
  try {
    const out = tidy(() => gateLinear(Tensor.fromArray(x, [B, D]), Tensor.fromArray(w, [D, E])));
    assertClose(await out.data(), refGateLinear(x, w, B, D, E), { what: `gateLinear ${B}×${D}×${E} under a small binding` });
    out.dispose();
  } finally {
    e.rt.bindingLimitForTests = null;
  }
});

t('gateLinear backward (dx = g·wᵀ, dw = xᵀ·g) passes gradcheck', async () => {
  await gpu();
  const [B, D, E] = [3, 41, 5];
  const r = await gradcheck((xs) => gateLinear(xs[0], xs[1]), [rng.uniform(B * D), rng.uniform(D * E)], [[B, D], [D, E]], { maxChecks: 24 });
  assert.ok(r.ok, r.message);
});

t('gateLinear backward matches float64 (dx = g·wᵀ, dw = xᵀ·g) at the gate\'s long D', async () => {
  await gpu();
  for (const [B, D, E] of [[4, 70001, 4], [3, 1001, 5], [1, 7, 13]]) {
    const x = Tensor.fromArray(rng.uniform(B * D), [B, D]);
    const w = Tensor.fromArray(rng.uniform(D * E), [D, E]);
    for (const p of [x, w]) p.requiresGrad = true;
    const out = gateLinear(x, w);
    const g = rng.uniform(B * E);
    const seed = Tensor.fromArray(g, [B, E]);
    backward(out, seed);
    const want = refGateLinearGrads(await x.data(), await w.data(), g, B, D, E);
    assertClose(await x.grad!.data(), want.dx, { what: `dx ${B}×${D}×${E}` });
    assertClose(await w.grad!.data(), want.dw, { what: `dw ${B}×${D}×${E}` });
    for (const v of [x, w, out, seed]) v.dispose();
  }
});

t.run();
