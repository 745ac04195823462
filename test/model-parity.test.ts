/**
 * The fusion network on the engine against the PyTorch reference (bench/reference/moe_fusion.py), through the fixture
 * fixtures/moe-fusion-small.safetensors written by bench/reference/make_fixtures.py: same weights, inputs and gate
 * noise; fused images, gate decisions, losses and every parameter gradient must agree (relative error ≤ 1e-4). The
 * comparisons are src/check/parity.ts's, which `moefusion selftest` runs too.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { netFromStateDict } from '../src/model/weights.ts';
import { saveWeights, loadWeights } from '../src/model/weights-file.ts';
import { fusionLayout } from '../src/model/fusion-net.ts';
import { stateDictNames } from '../src/model/parameters.ts';
import { inferenceParity, readParityFixture, trainingParity } from '../src/check/parity.ts';
import { describeComparison, type Comparison } from '../src/check/compare.ts';
import { withKernelVariant } from '../src/kernels/variant.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const t = suite('model parity with PyTorch');
const fx = readParityFixture();
const FIXTURE = fx.path;
const cfg = fx.cfg;
const get = (k: string) => {
  const v = fx.file.tensors.get(k);
  if (!v) throw new Error(`fixture lacks ${k}`);
  return v;
};

function assertAll(list: Comparison[]): void {
  for (const c of list) assert.ok(c.pass, describeComparison(c));
}

t('inference: fused image, gates and chosen experts match PyTorch', async () => {
  await gpu();
  const list = await inferenceParity(fx);
  assert.is(list.filter((c) => c.measure === 'mismatches').length, 3, 'the experts of three gates compared');
  assert.is(list.length, 13, 'the fused image and four values of each gate compared');
  assertAll(list);
});

t('training step with fixed noise: losses, loads and every parameter gradient match PyTorch', async () => {
  await gpu();
  const { comparisons, gradients } = await trainingParity(fx);
  assertAll(comparisons);
  assert.is(gradients, 86, 'every parameter gradient compared');
  assert.ok(comparisons.some((c) => c.what === 'expected.train.loss.total'), 'the total loss compared');
});

t('with the Winograd convolution forced (F(4×4), F(6×6)): inference and a training step still match PyTorch, and Winograd ran', async () => {
  const e = await gpu();
  const runs = () => e.rt.dispatchesByLabel.get('conv2d_winograd_multiply') ?? 0;
  for (const choice of ['winograd4', 'winograd6'] as const)
    await withKernelVariant({ conv: choice }, async () => {
      const before = runs();
      assertAll(await inferenceParity(fx));
      const inference = runs() - before;
      // 3×3 convolutions: 2 × 4 in the encoders, 2 × 2 local and 4 global expert layers.
      assert.ok(inference >= 16, `${choice}: every 3×3 convolution of inference ran Winograd (${inference} multiplies)`);
      const { comparisons } = await trainingParity(fx);
      assertAll(comparisons);
      // The training step: the same forward, and the input gradient of each but the two first layers (of the images).
      const training = runs() - before - inference;
      assert.ok(training >= 2 * inference - 2, `${choice}: the training step's forward and input gradients ran Winograd (${training} multiplies)`);
    });
});

t('weights round-trip through safetensors under the reference names', async () => {
  await gpu();
  const net = netFromStateDict(fx.file.tensors, FIXTURE, cfg, { ignoreUnknown: true });
  const dir = mkdtempSync(join(tmpdir(), 'moefusion-w-'));
  try {
    const file = join(dir, 'w.safetensors');
    await saveWeights(file, net);
    const stored = readSafetensors(file);
    const names = stateDictNames(fusionLayout(cfg));
    assert.equal([...stored.tensors.keys()].sort(), [...names].sort(), 'the reference state dict, buffers included');
    for (const name of names) assert.equal([...(stored.tensors.get(name)?.data ?? [])], [...get(name).data], name);
    const again = loadWeights(file, cfg);
    const [ours, theirs] = [net.params.entries, again.params.entries];
    assert.equal(theirs.map((e) => e.spec.name), ours.map((e) => e.spec.name));
    for (const [i, { spec, value }] of ours.entries()) assert.equal([...(await theirs[i].value.data())], [...(await value.data())], spec.name);
    again.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    net.dispose();
  }
});

t.run();
