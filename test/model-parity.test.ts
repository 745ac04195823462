/**
 * The fusion network on the engine against the PyTorch reference (bench/reference/moe_fusion.py), through the fixture
 * test/fixtures/moe-fusion-small.safetensors written by bench/reference/make_fixtures.py: same weights, inputs and
 * gate noise; fused images, gate decisions, losses and every parameter gradient must agree (relative error ≤ 1e-4).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolve } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { maxRelError } from './helpers/compare.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { tidy, noGrad } from '../src/tensor/engine.ts';
import { backward } from '../src/autograd/tape.ts';
import { configFromMetadata } from '../src/model/config.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { paramsFromStateDict } from '../src/model/weights.ts';
import { saveWeights, loadWeights } from '../src/model/weights-file.ts';
import { stateDictSlots, disposeParameters } from '../src/model/parameters.ts';
import { fusionLosses } from '../src/model/losses.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE = resolve(import.meta.dirname, 'fixtures/moe-fusion-small.safetensors');
const GATES = [
  ['fg', 'moe_fg'],
  ['bg', 'moe_bg'],
  ['global', 'DecoderMoE'],
] as const;
const TOL = 1e-4;

const t = suite('model parity with PyTorch');
const fx = readSafetensors(FIXTURE);
const cfg = configFromMetadata(fx.metadata['moefusion.config']);
const get = (k: string) => {
  const v = fx.tensors.get(k);
  if (!v) throw new Error(`fixture lacks ${k}`);
  return v;
};
const tensor = (k: string) => Tensor.fromArray(get(k).data, get(k).shape);

function close(actual: Float32Array, key: string, tol = TOL): void {
  const want = get(key).data;
  assert.is(actual.length, want.length, `${key}: length`);
  const err = maxRelError(actual, want);
  assert.ok(err <= tol, `${key}: relative error ${err.toExponential(2)} > ${tol}`);
}

t('inference: fused image, gates and chosen experts match PyTorch', async () => {
  await gpu();
  const params = paramsFromStateDict(fx.tensors, FIXTURE, cfg, { ignoreUnknown: true });
  const net = new FusionNet(params, cfg);
  const out = noGrad(() => tidy(() => net.forward(tensor('input.ir'), tensor('input.vis'), tensor('input.att'))));
  close(await out.fused.data(), 'expected.infer.fused');
  for (const [ours, theirs] of GATES) {
    const g = out.gates[ours];
    close(await g.gates.data(), `expected.infer.${theirs}.gates`);
    assert.equal([...(await g.topIndices.u32())], [...get(`expected.infer.${theirs}.top_indices`).data], `${theirs} experts`);
    close(await g.importance.data(), `expected.infer.${theirs}.importance`);
    close(await g.load.data(), `expected.infer.${theirs}.load`);
  }
  disposeParameters(params);
});

t('training step with fixed noise: losses, loads and every parameter gradient match PyTorch', async () => {
  await gpu();
  const params = paramsFromStateDict(fx.tensors, FIXTURE, cfg, { ignoreUnknown: true });
  const net = new FusionNet(params, cfg);
  const res = tidy(() => {
    const ir = tensor('input.ir');
    const vis = tensor('input.vis');
    const out = net.forward(ir, vis, tensor('input.att'), {
      train: true,
      noise: { fg: tensor('input.noise.moe_fg'), bg: tensor('input.noise.moe_bg'), global: tensor('input.noise.DecoderMoE') },
    });
    const losses = fusionLosses(cfg, out.fused, vis, ir, tensor('input.mask'), out.auxLoss);
    return { out, losses };
  });
  close(await res.out.fused.data(), 'expected.train.fused');
  for (const [ours, theirs] of GATES) {
    const g = res.out.gates[ours];
    assert.equal([...(await g.topIndices.u32())], [...get(`expected.train.${theirs}.top_indices`).data], `${theirs} experts`);
    close(await g.gates.data(), `expected.train.${theirs}.gates`);
    close(await g.load.data(), `expected.train.${theirs}.load`);
    close(await g.importance.data(), `expected.train.${theirs}.importance`);
    close(await g.auxLoss.data(), `expected.train.${theirs}.aux_loss`);
  }
  close(Float32Array.of(cfg.gradWeight * (await res.losses.grad.item())), 'expected.train.loss.grad');
  close(Float32Array.of(cfg.pixelWeight * (await res.losses.pixel.item())), 'expected.train.loss.pixel');
  close(await res.losses.total.data(), 'expected.train.loss.total');

  backward(res.losses.total);
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of params) grads.set(name, p.grad ? await p.grad.data() : new Float32Array(p.size));
  let checked = 0;
  for (const s of stateDictSlots(cfg)) {
    const all = grads.get(s.param)!;
    const n = s.shape.reduce((a, d) => a * d, 1);
    close(s.expert < 0 ? all : all.subarray(s.expert * n, (s.expert + 1) * n), `grad.${s.name}`);
    checked++;
  }
  assert.is(checked, 86, 'every parameter gradient compared');
  disposeParameters(params);
});

t('weights round-trip through safetensors under the reference names', async () => {
  await gpu();
  const params = paramsFromStateDict(fx.tensors, FIXTURE, cfg, { ignoreUnknown: true });
  const dir = mkdtempSync(join(tmpdir(), 'moefusion-w-'));
  try {
    const file = join(dir, 'w.safetensors');
    await saveWeights(file, params, cfg);
    const stored = readSafetensors(file);
    for (const s of stateDictSlots(cfg)) assert.equal([...stored.tensors.get(s.name)!.data], [...get(s.name).data], s.name);
    const again = loadWeights(file, cfg);
    for (const [name, p] of params) assert.equal([...(await again.get(name)!.data())], [...(await p.data())], name);
    disposeParameters(again);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    disposeParameters(params);
  }
});

t.run();
