/**
 * The log-sum-exp combination of the chosen experts (src/kernels/combine.ts): forward and gradients vs float64 on the
 * catalogue's cases (src/check/cases/combine.ts), gradcheck, underflow, > 128 MiB.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, familyTest } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { engine } from '../../src/tensor/engine.ts';
import { backward } from '../../src/autograd/tape.ts';
import { combineExperts } from '../../src/ops/index.ts';
import { combineRef, LOG_EPS } from '../../src/check/reference/combine.ts';
import { combineFamily, gatesFor, randomTop } from '../../src/check/cases/combine.ts';

const t = suite('combine');
const rng = new Rng(1701);

familyTest(t, 'combineExperts forward and backward (y and gates) match float64 for k = 1..3 on odd shapes', combineFamily);

t('combineExperts is safe for large |y| and gives log(eps) where the reference sum underflows', async () => {
  await gpu();
  const [B, E, k, P] = [2, 3, 2, 4];
  const top = [2, 0, 1, 2];
  const g = Float32Array.from([0.3, 0, 0.7, 0, 0.4, 0.6]);
  // Row 0: huge values (the naive float32 form overflows), row 1: both far below float32's range (underflow).
  const y = Float32Array.from([100, 95, 300, -5, 99, 101, 290, -4, -200, -120, -300, -110, -180, -119, -400, -104.5]);
  const yt = Tensor.fromArray(y, [B * k, P]);
  const gt = Tensor.fromArray(g, [B, E]);
  yt.requiresGrad = true;
  gt.requiresGrad = true;
  const idx = Tensor.fromArray(top, [B, k], 'u32');
  const out = combineExperts(yt, gt, idx);
  const want = combineRef(y, g, top, B, E, k, P);
  const got = await out.data();
  assertClose(got, want.out, { what: 'extreme combine', atol: 1e-5 });
  for (const i of [4, 5, 6, 7]) assert.is(got[i], Math.fround(LOG_EPS), 'underflow gives log(eps)');
  backward(out, Tensor.full([B, P], 1));
  const dy = await yt.grad!.data();
  assertClose(dy, want.dy, { what: 'extreme dy' });
  assert.ok(dy.subarray(2 * P).every((v) => v === 0), 'no gradient where the sum underflows');
  for (const v of [out, yt, gt, idx]) v.dispose();
});

t('combineExperts backward passes gradcheck (y and gates)', async () => {
  await gpu();
  for (const [B, E, k, C, H, W] of [
    [3, 5, 2, 2, 3, 5],
    [2, 4, 3, 1, 4, 3],
    [2, 3, 1, 2, 2, 3],
  ]) {
    const top = randomTop(B, E, k, rng);
    const idx = Tensor.fromArray(top, [B, k], 'u32');
    const r = await gradcheck(
      (xs) => combineExperts(xs[0], xs[1], idx),
      [rng.uniform(B * k * C * H * W, -2, 2), gatesFor(B, E, top, k, rng)],
      [[B * k, C, H, W], [B, E]],
      { maxChecks: 24 },
    );
    idx.dispose();
    assert.ok(r.ok, `B=${B} E=${E} k=${k}: ${r.message}`);
  }
});

t('combineExperts over more than one storage binding (8 × 16×480×640, forward and backward)', async () => {
  const e = await gpu();
  const [B, E, k, C, H, W] = [4, 4, 2, 16, 480, 640];
  const P = C * H * W;
  assert.ok(B * k * P * 4 > e.rt.maxBinding, 'y exceeds one binding');
  const top = randomTop(B, E, k, rng);
  const g = gatesFor(B, E, top, k, rng);
  // Smooth, cheap data: y_s(p) = sin(p·a_s + b_s)·3.
  const y = new Float32Array(B * k * P);
  for (let n = 0; n < B * k; n++) for (let p = 0; p < P; p++) y[n * P + p] = 3 * Math.sin(p * (0.001 + n * 1e-4) + n);
  const yt = Tensor.fromArray(y, [B * k, C, H, W]);
  const gt = Tensor.fromArray(g, [B, E]);
  yt.requiresGrad = true;
  gt.requiresGrad = true;
  const idx = Tensor.fromArray(top, [B, k], 'u32');
  const out = combineExperts(yt, gt, idx);
  // Upstream gradient 1 everywhere: d gates = Σ_p a_s(p).
  backward(out, Tensor.full([B, C, H, W], 1));
  const want = combineRef(y, g, top, B, E, k, P);
  assertClose(await out.data(), want.out, { what: 'big combine', atol: 1e-5 });
  // dy: check a window at the start and the end of every sample (read back in parts).
  const win = 4096;
  for (let n = 0; n < B * k; n++)
    for (const start of [n * P, (n + 1) * P - win]) {
      const part = new Float32Array(await engine().rt.read(yt.grad!.buffer, start * 4, win * 4));
      assertClose(part, want.dy.subarray(start, start + win), { what: `big dy sample ${n} at ${start}` });
    }
  const wantDg = new Float64Array(B * E);
  for (let b = 0; b < B; b++)
    for (let s = 0; s < k; s++) {
      let acc = 0;
      for (let p = 0; p < P; p++) acc += want.dg[(b * k + s) * P + p];
      wantDg[b * E + top[b * k + s]] = acc;
    }
  assertClose(await gt.grad!.data(), wantDg, { what: 'big d gates', rtol: 1e-4 });
  for (const v of [out, yt, gt, idx]) v.dispose();
});

t.run();
