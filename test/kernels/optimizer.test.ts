/**
 * The optimizer kernels (src/kernels/optimizer.ts): Adam / AdamW vs float64 PyTorch formulas on the catalogue's
 * cases (src/check/cases/optimizer.ts: sizes that are and are not multiples of 4), state export/import, zeroGrad,
 * gradient-norm clipping, and parameters beyond one storage binding.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, familyTest } from '../helpers/compare.ts';
import { Tensor, parameter } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { add, sum, mul } from '../../src/ops/index.ts';
import { Adam, clipGradNorm } from '../../src/optim/optimizer.ts';
import { ReferenceAdam, refClipGradNorm } from '../../src/check/reference/optimizer.ts';
import { ADAM_DEFAULTS as base, ADAM_SHAPES as SHAPES, adamFamily } from '../../src/check/cases/optimizer.ts';

const t = suite('optimizer');
const rng = new Rng(99);

function makeParams(): { params: Tensor[]; init: Float32Array[] } {
  const init = SHAPES.map((s) => rng.normal(s.reduce((a, b) => a * b, 1)));
  return { params: init.map((d, i) => parameter(Tensor.fromArray(d, SHAPES[i]), `p${i}`)), init };
}

function setGrads(params: Tensor[], grads: Float32Array[]): void {
  params.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = Tensor.fromArray(grads[i], p.shape);
  });
}

familyTest(t, 'Adam with and without weight decay, and AdamW (decoupled weight decay): 3 steps match PyTorch formulas in float64', adamFamily);

t('parameters without a gradient are left alone; importState resumes exactly', async () => {
  await gpu();
  const { params, init } = makeParams();
  const opts = { ...base, weightDecay: 0.01 };
  const adam = new Adam(params, opts);
  const grads = () => params.map((p) => rng.normal(p.size));
  setGrads(params, grads());
  params[1].grad!.dispose();
  params[1].grad = null;
  adam.step();
  assert.equal([...(await params[1].data())], [...init[1]], 'no grad, no update (and no weight decay)');
  // Resume: a second optimizer over copies of the parameters, restored from the first one's state.
  const copies = await Promise.all(params.map(async (p, i) => parameter(Tensor.fromArray(await p.data(), p.shape), `c${i}`)));
  const resumed = new Adam(copies, opts);
  resumed.importState(await adam.exportState());
  const g = grads();
  setGrads(params, g);
  setGrads(copies, g);
  adam.step();
  resumed.step();
  for (const [i, p] of params.entries()) assert.equal([...(await copies[i].data())], [...(await p.data())], `resumed param ${i}`);
  assert.is((await resumed.exportState()).step, 2, 'the step count resumed');
  resumed.zeroGrad();
  assert.ok(copies.every((p) => p.grad === null), 'zeroGrad drops the gradients');
  assert.throws(() => resumed.importState({ step: 1, m: [], v: [] }), /moments/);
  for (const x of [...params, ...copies]) x.dispose();
  adam.dispose();
  resumed.dispose();
});

async function checkClip(maxNorm: number, gradScale: number): Promise<void> {
  const { params } = makeParams();
  const grads = params.map((p) => rng.normal(p.size, gradScale));
  setGrads(params, grads);
  const noGrad = parameter(Tensor.fromArray([5, 5], [2]), 'unused'); // skipped
  const { norm: total, factor } = refClipGradNorm(grads, maxNorm);
  const norm = clipGradNorm([...params, noGrad], maxNorm);
  assertClose([await norm.item()], [total], { rtol: 1e-5, what: 'total norm' });
  for (const [i, p] of params.entries())
    assertClose(await p.grad!.data(), Float64Array.from(grads[i], (x) => x * factor), { rtol: 1e-5, what: `clipped grad ${i}` });
  assert.is(noGrad.grad, null);
  for (const x of [...params, noGrad, norm]) x.dispose();
}

t('clipGradNorm: total norm and grads vs float64, below and above the threshold', async () => {
  await gpu();
  await checkClip(1e6, 1); // below: unchanged
  await checkClip(1.5, 1); // above: scaled down
  await checkClip(35, 0.001); // tiny gradients
  const empty = clipGradNorm([parameter(Tensor.fromArray([1], [1]))], 1);
  assert.is(await empty.item(), 0, 'no gradients: norm 0');
  empty.dispose();
});

t('clipGradNorm: a gradient shared by two leaves counts for each leaf and is scaled once', async () => {
  await gpu();
  const a = parameter(Tensor.fromArray([1, 2, 3], [3]), 'a');
  const b = parameter(Tensor.fromArray([4, 5, 6], [3]), 'b');
  const w = Tensor.fromArray([3, 0, 4], [3]);
  const loss = tidy(() => sum(mul(add(a, b), w)));
  backward(loss);
  const norm = clipGradNorm([a, b], 1);
  const total = Math.sqrt(2 * 25);
  assertClose([await norm.item()], [total], { rtol: 1e-5, what: 'norm over both leaves' });
  const scaled = [3, 0, 4].map((x) => x / (total + 1e-6));
  assertClose(await a.grad!.data(), scaled, { rtol: 1e-5, what: 'a.grad' });
  assertClose(await b.grad!.data(), scaled, { rtol: 1e-5, what: 'b.grad' });
  for (const x of [a, b, w, loss, norm]) x.dispose();
});

t('a parameter larger than one storage binding is updated and clipped in chunks', async () => {
  const e = await gpu();
  const n = e.rt.maxBinding / 4 + 1000; // the last 1000 values lie in a second chunk
  const x = new Float32Array(n);
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = ((i * 7919) % 1013) / 1013 - 0.5;
    g[i] = ((i * 104729) % 997) / 997 - 0.5;
  }
  const p = parameter(Tensor.fromArray(x, [n]), 'big');
  p.grad = Tensor.fromArray(g, [n]);
  const want = refClipGradNorm([g], 1);
  const norm = clipGradNorm([p], 1);
  const factor = want.factor;
  const adam = new Adam([p], { lr: 0.1, weightDecay: 0.1 });
  adam.step();
  assertClose([await norm.item()], [want.norm], { rtol: 1e-5, what: 'norm over chunks' });
  const out = await p.data();
  // Sample both sides of the chunk boundary.
  for (const i of [0, 1, n - 1001, n - 1000, n - 1]) {
    const ref = new ReferenceAdam(Float64Array.of(x[i]), { ...base, lr: 0.1, weightDecay: 0.1 });
    ref.update([g[i] * factor], 0.1);
    assertClose([out[i]], ref.x, { rtol: 1e-5, what: `element ${i}` });
  }
  adam.dispose();
  for (const t of [p, norm]) t.dispose();
});

t.run();
