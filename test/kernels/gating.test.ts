/**
 * The noisy top-k gate (src/kernels/gating.ts): Φ, the forward (selection, gates, load, importance, cv² loss) in
 * inference and training against float64 on the catalogue's cases (src/check/cases/gating.ts), ties, the backward
 * against finite differences, no read-back, and the routing table.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, familyTest } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { gateRef, phi64, refRoutingTable } from '../../src/check/reference/gating.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { noGrad, tidy } from '../../src/tensor/engine.ts';
import { noisyTopKGate, routingTable } from '../../src/ops/index.ts';
import { normalCdfKernel } from '../../src/kernels/gating.ts';
import { gateFamily, gateInputs, type GateCase } from '../../src/check/cases/gating.ts';

const t = suite('gating');
const rng = new Rng(2017);

t('Φ (erfc approximation in f32) matches a float64 erf on [−8, 8]', async () => {
  await gpu();
  const n = 16001;
  const z = Float32Array.from({ length: n }, (_, i) => -8 + (16 * i) / (n - 1));
  const out = tidy(() => normalCdfKernel(Tensor.fromArray(z, [n])));
  const got = await out.data();
  out.dispose();
  let maxAbs = 0;
  let maxRelTail = 0;
  for (let i = 0; i < n; i++) {
    const want = phi64(z[i]);
    maxAbs = Math.max(maxAbs, Math.abs(got[i] - want));
    if (z[i] < 0) maxRelTail = Math.max(maxRelTail, Math.abs(got[i] - want) / want);
  }
  assert.ok(maxAbs < 1e-7, `max |Φ error| ${maxAbs.toExponential(2)}`);
  assert.ok(maxRelTail < 5e-6, `max relative error of the lower tail ${maxRelTail.toExponential(2)}`);
  assert.ok(Math.abs(phi64(-8) - 6.22096057427e-16) < 1e-25 && Math.abs(phi64(1) - 0.841344746068543) < 1e-14, 'float64 reference');
});

t('Φ stays finite and exact at extreme arguments (untrained gates produce |z| in the thousands)', async () => {
  await gpu();
  // A sweep of both tails off the 1/16 grid the approximation splits the exponent on (where it overflowed).
  const sweep = Array.from({ length: 2000 }, (_, i) => 14 + 17.3 * i + 0.0371 * (i % 27));
  const z = Float32Array.from([-1e30, ...sweep.map((v) => -v), -14.6, -14.4, 14.4, ...sweep, 1e30]);
  const out = tidy(() => normalCdfKernel(Tensor.fromArray(z, [z.length])));
  const got = await out.data();
  out.dispose();
  for (let i = 0; i < z.length; i++) {
    assert.ok(Number.isFinite(got[i]), `Φ(${z[i]}) is ${got[i]}`);
    assert.ok(Math.abs(got[i] - phi64(z[i])) < 1e-30 + 1e-7, `Φ(${z[i]}) = ${got[i]}, expected ${phi64(z[i])}`);
  }
});

function runGate(c: GateCase, x: Tensor, wg: Tensor, wn: Tensor, noise: Tensor | undefined) {
  return noisyTopKGate(x, wg, wn, { k: c.k, train: c.train, noise, lossCoef: c.coef });
}

familyTest(t, 'noisyTopKGate forward matches float64 (inference and training with fixed noise, k = 1..E)', gateFamily);

t('noisyTopKGate ties pick the lower index first; training follows the noise given and refuses to run without it', async () => {
  await gpu();
  const [B, D, E] = [2, 3, 4];
  const r = tidy(() => noisyTopKGate(Tensor.zeros([B, D]), Tensor.zeros([D, E]), Tensor.zeros([D, E]), { k: 3, train: false, lossCoef: 0.01 }));
  assert.equal([...(await r.topIndices.u32())], [0, 1, 2, 0, 1, 2]);
  assertClose(await r.gates.data(), [1 / 3, 1 / 3, 1 / 3, 0, 1 / 3, 1 / 3, 1 / 3, 0], { what: 'tied gates' });
  for (const v of Object.values(r)) v.dispose();
  assert.throws(() => tidy(() => noisyTopKGate(Tensor.zeros([B, D]), Tensor.zeros([D, E]), Tensor.zeros([D, E]), { k: 2, train: true, lossCoef: 0.01 })), /training needs the noise \(2, 4\)/);
  // σ = softplus(0) + 0.01 everywhere, logits = ε·σ: the choice must follow ε.
  const eps = new Rng(5).normal(B * E);
  const drawn = tidy(() => noisyTopKGate(Tensor.zeros([B, D]), Tensor.zeros([D, E]), Tensor.zeros([D, E]), { k: 2, train: true, lossCoef: 0.01, noise: Tensor.fromArray(eps, [B, E]) }));
  const want = gateRef(new Float32Array(B * D), new Float32Array(D * E), new Float32Array(D * E), eps, B, D, E, 2, 0.01);
  assert.equal([...(await drawn.topIndices.u32())], want.top);
  assertClose(await drawn.load.data(), want.load, { what: 'load with drawn noise' });
  for (const v of Object.values(drawn)) v.dispose();
});

t('noisyTopKGate backward (aux loss, gates, load) passes gradcheck to x, wGate and wNoise', async () => {
  await gpu();
  const checks: Array<[GateCase, 'auxLoss' | 'gates' | 'load']> = [
    [{ B: 3, D: 23, E: 5, k: 2, train: true, coef: 1 }, 'auxLoss'],
    [{ B: 3, D: 23, E: 5, k: 3, train: true, coef: 1 }, 'gates'],
    [{ B: 2, D: 19, E: 4, k: 2, train: true, coef: 1 }, 'load'],
    [{ B: 3, D: 17, E: 5, k: 2, train: false, coef: 1 }, 'auxLoss'],
    [{ B: 3, D: 17, E: 4, k: 4, train: true, coef: 1 }, 'auxLoss'],
  ];
  for (const [c, output] of checks) {
    const { x, wg, wn, noise } = gateInputs(c, rng);
    const nt = noise ? Tensor.fromArray(noise, [c.B, c.E]) : undefined;
    const r = await gradcheck(
      (xs) => runGate(c, xs[0], xs[1], xs[2], nt)[output],
      [x, wg, wn],
      [[c.B, c.D], [c.D, c.E], [c.D, c.E]],
      { maxChecks: 20, h: 3e-3 },
    );
    nt?.dispose();
    assert.ok(r.ok, `${output} ${c.train ? 'train' : 'infer'} k=${c.k}: ${r.message}`);
  }
});

t('noisyTopKGate inference gives wNoise no gradient and never reads back', async () => {
  const e = await gpu();
  const [B, D, E] = [2, 11, 4];
  const x = Tensor.fromArray(rng.uniform(B * D), [B, D]);
  const wg = Tensor.fromArray(rng.uniform(D * E), [D, E]);
  const wn = Tensor.fromArray(rng.uniform(D * E), [D, E]);
  for (const p of [x, wg, wn]) p.requiresGrad = true;
  const read = e.rt.read.bind(e.rt);
  let reads = 0;
  e.rt.read = (...a) => (reads++, read(...a));
  const r = runGate({ B, D, E, k: 2, train: false, coef: 0.01 }, x, wg, wn, undefined);
  backward(r.auxLoss);
  e.rt.read = read;
  assert.is(reads, 0, 'no read-back');
  assert.ok(x.grad && wg.grad && !wn.grad);
  for (const v of [...Object.values(r), x, wg, wn]) v.dispose();
});

t('routingTable: [input, expert] per routed sample, by sample, by expert group and chained', async () => {
  await gpu();
  const B = 3;
  const k = 2;
  const top = [3, 0, 1, 2, 2, 3];
  const idx = Tensor.fromArray(top, [B, k], 'u32');
  const cases: Array<[Parameters<typeof routingTable>[2], number[]]> = [
    [{}, [0, 0, 1, 1, 2, 2]],
    [{ inputOf: 'expertGroup', groups: 2 }, [1 * B + 0, 0, 0 + 1, 1 * B + 1, 1 * B + 2, 1 * B + 2]],
    [{ inputOf: 'expertGroup', groups: 4 }, [3 * B + 0, 0, 1 * B + 1, 2 * B + 1, 2 * B + 2, 3 * B + 2]],
    [{ inputOf: 'self' }, [0, 1, 2, 3, 4, 5]],
  ];
  for (const [opts, inputs] of cases) {
    const table = routingTable(idx, 4, opts);
    assert.equal([...table.shape], [B * k, 2]);
    assert.is(table.dtype, 'u32');
    const want = inputs.flatMap((input, n) => [input, top[n]]);
    assert.equal([...(await table.u32())], want, JSON.stringify(opts));
    assert.equal(refRoutingTable(top, k, 4, opts?.inputOf, opts?.groups), want, `float64 reference ${JSON.stringify(opts)}`);
    table.dispose();
  }
  idx.dispose();
  // Top indices straight from the gate.
  const g = noGrad(() =>
    noisyTopKGate(Tensor.fromArray(rng.uniform(8), [2, 4]), Tensor.fromArray(rng.uniform(16), [4, 4]), Tensor.zeros([4, 4]), { k: 2, train: false, lossCoef: 0 }),
  );
  const table = routingTable(g.topIndices, 4, { inputOf: 'expertGroup', groups: 2 });
  const chosen = await g.topIndices.u32();
  assert.equal([...(await table.u32())], refRoutingTable(chosen, 2, 4, 'expertGroup', 2));
  table.dispose();
  for (const v of Object.values(g)) v.dispose();
  assert.throws(() => routingTable(Tensor.zeros([1, 2], 'u32'), 3, { inputOf: 'expertGroup', groups: 2 }), /3 experts do not split into 2/);
  assert.throws(() => routingTable(Tensor.zeros([1, 2], 'u32'), 1), /1 experts cannot hold the top 2/);
});

t.run();
