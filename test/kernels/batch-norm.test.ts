/**
 * Batch normalisation (src/kernels/batch-norm.ts): training statistics (one and many parts per channel), output,
 * in-place running update, eval, and the backward in both modes against float64
 * (src/check/reference/batch-norm.ts), finite differences, and maps beyond one storage binding.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refBatchNormGrad, refChannelStats, refNormalize, refRunningUpdate } from '../../src/check/reference/batch-norm.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { noGrad } from '../../src/tensor/engine.ts';
import { batchNorm2d } from '../../src/ops/index.ts';

const t = suite('batch-norm');
const rng = new Rng(23);

/** Random γ, β and running statistics for C channels. */
function bnParams(c: number) {
  return { gamma: rng.uniform(c, 0.5, 1.5), beta: rng.uniform(c), runMean: rng.uniform(c), runVar: rng.uniform(c, 0.5, 2) };
}

t('batchNorm2d training: batch statistics, output and in-place running update match float64', async () => {
  await gpu();
  const cases: Array<[number[], number]> = [
    [[3, 5, 7, 11], 0.1],
    [[1, 1, 13, 3], 0.3],
    [[3, 5, 1, 1], 0.1], // one value per plane
    [[1, 5, 1, 1], 0.1], // N·H·W = 1: output β, running variance takes the biased (zero) batch variance
    [[4, 3, 67, 71], 0.1], // several parts per channel
    [[3, 1, 97, 89], 1], // one channel split into many parts
  ];
  for (const [shape, momentum] of cases) {
    const c = shape[1];
    const p = bnParams(c);
    // An offset keeps the variance small against the mean: the statistics must not cancel catastrophically.
    const x = Float32Array.from(rng.normal(size(shape)), (v, i) => 5 + (Math.floor(i / (shape[2] * shape[3])) % c) + v);
    const running = { mean: Tensor.fromArray(p.runMean, [c]), var: Tensor.fromArray(p.runVar, [c]) };
    const ts = [Tensor.fromArray(x, shape), Tensor.fromArray(p.gamma, [c]), Tensor.fromArray(p.beta, [c])];
    const out = noGrad(() => batchNorm2d(ts[0], ts[1], ts[2], running, { training: true, momentum }));
    const s = refChannelStats(x, shape);
    const what = `training ${shape}`;
    assertClose(await out.data(), refNormalize(x, shape, s.mean, s.var, p.gamma, p.beta, 1e-5), { what: `${what} output` });
    const unbiased = s.count > 1 ? s.var.map((v) => (v * s.count) / (s.count - 1)) : s.var;
    assertClose(await running.mean.data(), refRunningUpdate(p.runMean, s.mean, momentum), { what: `${what} running mean` });
    assertClose(await running.var.data(), refRunningUpdate(p.runVar, unbiased, momentum), { what: `${what} running var` });
    for (const v of [...ts, out, running.mean, running.var]) v.dispose();
  }
});

t('batchNorm2d eval uses the running statistics and leaves them unchanged; shape errors', async () => {
  await gpu();
  for (const shape of [[3, 5, 7, 5], [1, 1, 1, 1], [1, 3, 2, 13]]) {
    const c = shape[1];
    const p = bnParams(c);
    const x = rng.normal(size(shape), 2);
    const running = { mean: Tensor.fromArray(p.runMean, [c]), var: Tensor.fromArray(p.runVar, [c]) };
    const ts = [Tensor.fromArray(x, shape), Tensor.fromArray(p.gamma, [c]), Tensor.fromArray(p.beta, [c])];
    const out = noGrad(() => batchNorm2d(ts[0], ts[1], ts[2], running, { training: false, eps: 1e-3 }));
    assertClose(await out.data(), refNormalize(x, shape, p.runMean, p.runVar, p.gamma, p.beta, 1e-3), { what: `eval ${shape}` });
    assertClose(await running.mean.data(), p.runMean, { what: 'running mean unchanged', rtol: 0, atol: 0 });
    assertClose(await running.var.data(), p.runVar, { what: 'running var unchanged', rtol: 0, atol: 0 });
    for (const v of [...ts, out, running.mean, running.var]) v.dispose();
  }
  const c3 = Tensor.zeros([3]);
  const running = { mean: c3, var: c3 };
  assert.throws(() => batchNorm2d(Tensor.zeros([2, 4, 3, 3]), c3, c3, running, { training: true }), /gamma \[3\] must hold 4/);
  assert.throws(() => batchNorm2d(Tensor.zeros([3, 3]), c3, c3, running, { training: true }), /expected \(N, C, H, W\)/);
  c3.dispose();
});

t('batchNorm2d backward matches float64 for x, gamma, beta in training and eval (multi-part channels)', async () => {
  await gpu();
  for (const training of [true, false])
    for (const shape of [[3, 5, 7, 3], [4, 2, 61, 53], [3, 4, 1, 1]]) {
      const c = shape[1];
      const p = bnParams(c);
      const xd = rng.normal(size(shape));
      const x = Tensor.fromArray(xd, shape);
      const gamma = Tensor.fromArray(p.gamma, [c]);
      const beta = Tensor.fromArray(p.beta, [c]);
      for (const v of [x, gamma, beta]) v.requiresGrad = true;
      const running = { mean: Tensor.fromArray(p.runMean, [c]), var: Tensor.fromArray(p.runVar, [c]) };
      const out = batchNorm2d(x, gamma, beta, running, { training });
      const gd = rng.uniform(out.size);
      const g = Tensor.fromArray(gd, out.shape);
      backward(out, g);
      const s = training ? refChannelStats(xd, shape) : { mean: p.runMean, var: p.runVar };
      const want = refBatchNormGrad(gd, xd, shape, s.mean, s.var, p.gamma, 1e-5, training);
      const what = `${training ? 'training' : 'eval'} ${shape}`;
      // dx in training is a difference of terms of similar size: a looser relative tolerance.
      assertClose(await x.grad!.data(), want.dx, { what: `${what} dx`, rtol: 5e-4 });
      assertClose(await gamma.grad!.data(), want.dGamma, { what: `${what} dgamma`, rtol: 2e-4 });
      assertClose(await beta.grad!.data(), want.dBeta, { what: `${what} dbeta`, rtol: 2e-4 });
      for (const v of [x, gamma, beta, out, g, running.mean, running.var]) v.dispose();
    }
});

t('batchNorm2d gradients for x, gamma, beta pass finite differences in training and eval', async () => {
  await gpu();
  const cases: Array<[number[], boolean]> = [
    [[3, 2, 3, 5], true],
    [[1, 3, 5, 1], true],
    [[3, 2, 3, 5], false],
  ];
  for (const [shape, training] of cases) {
    const c = shape[1];
    const p = bnParams(c);
    const running = { mean: Tensor.fromArray(p.runMean, [c]), var: Tensor.fromArray(p.runVar, [c]) };
    // Training updates the running statistics on every call; the output does not depend on them.
    const f = ([x, gamma, beta]: Tensor[]) => batchNorm2d(x, gamma, beta, running, { training });
    const r = await gradcheck(f, [rng.normal(size(shape)), p.gamma, p.beta], [shape, [c], [c]], { maxChecks: 32 });
    assert.ok(r.ok, `${training ? 'training' : 'eval'} ${shape}: ${r.message}`);
    running.mean.dispose();
    running.var.dispose();
  }
});

t('batchNorm2d beyond one storage binding (training, both ways) in image groups', async () => {
  const e = await gpu();
  // 3 images of 2×2367×2367: 134.5 MB, over the 128 MiB binding limit; two images fit one binding.
  const shape = [3, 2, 2367, 2367];
  const count = size(shape);
  assert.ok(count * 4 > e.rt.maxBinding, 'x exceeds one binding');
  const plane = shape[2] * shape[3];
  // Cheap deterministic patterns (random numbers for 34 M values would dominate the test's time); channel 1 of x
  // is shifted by `shift`.
  const pattern = (shift: number, step: number, period: number) => {
    const d = new Float32Array(count);
    for (let p = 0, v = 0; p < count / plane; p++)
      for (let i = p * plane; i < (p + 1) * plane; i++, v = (v + step) % period) d[i] = v / period - 0.5 + (p % 2) * shift;
    return d;
  };
  const xd = pattern(3, 7919, 10007);
  const gd = pattern(0, 104729, 9973);
  const p = bnParams(2);
  const x = Tensor.fromArray(xd, shape);
  const gamma = Tensor.fromArray(p.gamma, [2]);
  const beta = Tensor.fromArray(p.beta, [2]);
  for (const v of [x, gamma, beta]) v.requiresGrad = true;
  const running = { mean: Tensor.fromArray(p.runMean, [2]), var: Tensor.fromArray(p.runVar, [2]) };
  const out = batchNorm2d(x, gamma, beta, running, { training: true });
  const s = refChannelStats(xd, shape);
  assertClose(await out.data(), refNormalize(xd, shape, s.mean, s.var, p.gamma, p.beta, 1e-5), { what: 'large output' });
  const unbiased = s.var.map((v) => (v * s.count) / (s.count - 1));
  assertClose(await running.mean.data(), refRunningUpdate(p.runMean, s.mean, 0.1), { what: 'large running mean' });
  assertClose(await running.var.data(), refRunningUpdate(p.runVar, unbiased, 0.1), { what: 'large running var' });
  const g = Tensor.fromArray(gd, shape);
  backward(out, g);
  const want = refBatchNormGrad(gd, xd, shape, s.mean, s.var, p.gamma, 1e-5, true);
  assertClose(await x.grad!.data(), want.dx, { what: 'large dx', rtol: 5e-4 });
  assertClose(await gamma.grad!.data(), want.dGamma, { what: 'large dgamma', rtol: 2e-4 });
  assertClose(await beta.grad!.data(), want.dBeta, { what: 'large dbeta', rtol: 2e-4 });
  for (const v of [x, g, gamma, beta, out, running.mean, running.var]) v.dispose();
});

t.run();
