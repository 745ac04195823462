/**
 * Training on real data: a few hundred steps on tiny RoadScene crops lower the total loss; a run resumed from a
 * checkpoint continues exactly (same losses as the uninterrupted run); the full model runs at 640×480 and at a
 * non-4:3 size within the adapter's limits, its inference releasing activations as it goes (a bound on peak memory).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolve } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { assertResumesExactly } from './helpers/resume.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { noGrad, tidy } from '../src/tensor/engine.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { Rng } from '../src/util/rng.ts';
import { DEFAULT_CONFIG } from '../src/model/config.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { Trainer } from '../src/train/trainer.ts';
import { referenceOptions, type TrainOptions } from '../src/train/options.ts';
import type { SampleSource, TrainingSample } from '../src/train/data.ts';
import { openDataset } from '../src/io/dataset.ts';
import { readImage } from '../src/io/image.ts';
import { toGray01 } from '../src/io/color.ts';

const small = SMALL_GATES;

/** The first `n` RoadScene pairs, gray. */
async function roadscene(n: number): Promise<SampleSource> {
  const pairs = openDataset(resolve(import.meta.dirname, '../../shared/data/roadscene')).pairs.slice(0, n);
  const samples: TrainingSample[] = [];
  for (const p of pairs) {
    const [ir, vi] = [await readImage(p.ir), await readImage(p.vi)];
    samples.push({ width: ir.width, height: ir.height, ir: toGray01(ir, 'first'), vis: toGray01(vi, 'luma') });
  }
  return { count: samples.length, get: async (i) => samples[i] };
}

function options(steps: number): TrainOptions {
  return { ...referenceOptions(steps), batchSize: 2, crop: [24, 32], lr: 1e-3, milestones: [], seed: 1 };
}

const t = suite('training');

t('a few hundred steps on RoadScene crops lower the total loss', async () => {
  await gpu();
  const net = FusionNet.init(small, 1);
  const trainer = new Trainer(net, await roadscene(16), options(240));
  const losses: number[] = [];
  while (trainer.step < 240) losses.push((await trainer.trainStep()).total);
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const first = mean(losses.slice(0, 40));
  const last = mean(losses.slice(-40));
  console.log(`  mean loss of the first 40 steps ${first.toFixed(3)}, of the last 40 ${last.toFixed(3)}`);
  assert.ok(losses.every(Number.isFinite), 'finite losses');
  assert.ok(last < 0.8 * first, `loss did not fall: ${first.toFixed(3)} → ${last.toFixed(3)}`);
  trainer.optimizer.dispose();
  net.dispose();
});

t('a resumed run continues exactly where the checkpoint left it', async () => {
  await gpu();
  const data = await roadscene(6);
  await assertResumesExactly(small, data, options(6));
});

t('full model at 640×480 and 450×620 (one set of weights) within the adapter, with peak memory', async () => {
  const e = await gpu();
  const net = FusionNet.init(DEFAULT_CONFIG, 5);
  const r = new Rng(2);
  for (const [H, W] of [[480, 640], [450, 620]]) {
    e.rt.pool.resetPeak();
    const before = e.rt.pool.liveBytes;
    const t0 = performance.now();
    const fused = noGrad(() =>
      tidy(() => net.forward(Tensor.fromArray(r.uniform(H * W, 0, 1), [1, 1, H, W]), Tensor.fromArray(r.uniform(H * W, 0, 1), [1, 1, H, W])).fused),
    );
    const out = await fused.data();
    fused.dispose();
    // Inference releases each stage's tensors once used: at its peak it holds x_f (160 channels), the two global
    // experts' 64-channel outputs and a partial slab, 670-730 channel planes with the buffer pool's size classes;
    // holding every activation to the end took about 1 400.
    const planes = (e.rt.pool.peakBytes - before) / (H * W * 4);
    console.log(`  ${W}×${H}: ${(performance.now() - t0).toFixed(0)} ms, peak GPU memory ${(e.rt.pool.peakBytes / 2 ** 20).toFixed(0)} MiB (${planes.toFixed(0)} channel planes above the weights)`);
    assert.ok(planes < 900, `inference held ${planes.toFixed(0)} channel planes at its peak`);
    assert.equal([...fused.shape], [1, 1, H, W]);
    assert.ok(out.every(Number.isFinite), 'finite fused image');
    assert.ok(e.rt.pool.peakBytes < 4 * 2 ** 30, 'peak below 4 GiB');
  }
  net.dispose();
});

t.run();
