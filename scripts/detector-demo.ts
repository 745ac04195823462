/**
 * The detectors' demonstration of README.md: trains both detectors from scratch on 64×64 synthetic scenes exactly as
 * test/detector-learning.test.ts does (500 steps), stores them beside the shipped fusion weights in
 * OUT/weights.safetensors, writes four new 128×128 scenes to OUT/data, runs `moefusion detect` on them and stacks
 * its pictures into results/detector-synthetic.png.
 *   npx tsx scripts/detector-demo.ts [OUT=out/detector-demo]
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { initEngine, shutdownEngine, tidy } from '../src/graph/engine.ts';
import { Tensor } from '../src/graph/tensor.ts';
import { backward } from '../src/graph/autograd.ts';
import { Adam } from '../src/graph/optimizer.ts';
import { syntheticScene, writeSyntheticDataset, SYNTHETIC_CLASSES, type SyntheticScene } from '../src/io/synthetic-scenes.ts';
import { Detector } from '../src/model/detector/network.ts';
import { initDetectorTensors } from '../src/model/detector/parameters.ts';
import { buildTargets } from '../src/model/detector/targets.ts';
import { detectorLoss } from '../src/model/detector/losses.ts';
import { detectorToHost } from '../src/model/detector/weights.ts';
import type { DetectorConfig } from '../src/model/detector/config.ts';
import { loadWeightsWithConfig, saveWeights } from '../src/model/weights.ts';
import { DEFAULT_WEIGHTS } from '../src/cli/defaults.ts';

const root = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(root, 'out/detector-demo'));
const [S, B, STEPS] = [64, 4, 500];
const config: DetectorConfig = { classes: [...SYNTHETIC_CLASSES], backbone: [8, 16, 16, 16], fpn: 16, head: 16 };
const scene = { width: S, height: S, maxObjects: 3, minSize: 10, maxSize: 29 };

await initEngine();
const train = Array.from({ length: 256 }, (_, k) => syntheticScene(1000 + k, scene));
const tensors = initDetectorTensors(config, 1);
const detector = new Detector(tensors, config);
const adam = new Adam([...tensors.params.values()], { lr: 5e-3, weightDecay: 1e-4 });
const planes = (batch: SyntheticScene[], k: 'ir' | 'vis') => {
  const a = new Float32Array(B * S * S);
  batch.forEach((s, b) => a.set(s[k], b * S * S));
  return Tensor.fromArray(a, [B, 1, S, S]);
};
for (let step = 0; step < STEPS; step++) {
  const batch = Array.from({ length: B }, (_, b) => train[(step * B + b) % train.length]);
  const loss = tidy(() => detectorLoss(detector.forward(planes(batch, 'ir'), planes(batch, 'vis'), { training: true }), buildTargets(batch.map((s) => s.boxes), S, S, config.classes)));
  backward(loss);
  adam.step();
  adam.zeroGrad();
  if ((step + 1) % 100 === 0) console.log(`step ${step + 1}: loss ${(await loss.item()).toFixed(3)}`);
  else await loss.item();
  loss.dispose();
}
rmSync(out, { recursive: true, force: true });
const weights = join(out, 'weights.safetensors');
const { params, config: fusion } = loadWeightsWithConfig(DEFAULT_WEIGHTS);
const host = await detectorToHost(tensors, config);
await saveWeights(weights, params, fusion, { inferenceOnly: true, metadata: host.metadata, extraTensors: host.tensors });
shutdownEngine();

const data = join(out, 'data');
await writeSyntheticDataset(data, { count: 4, width: 128, height: 128, seed: 77, maxObjects: 4, minSize: 12, maxSize: 29 });
execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'detect', '--data', data, '--weights', weights, '--out', join(out, 'detect')], { stdio: 'inherit' });

const strips = [0, 1, 2, 3].map((k) => join(out, 'detect', `0000${k}.png`));
const { width, height } = await sharp(strips[0]).metadata();
const gap = 8;
const total = strips.length * height! + (strips.length - 1) * gap;
const stacked = await sharp({ create: { width: width!, height: total, channels: 3, background: '#ffffff' } })
  .composite(strips.map((input, i) => ({ input, top: i * (height! + gap), left: 0 })))
  .png()
  .toBuffer();
await sharp(stacked).resize(2 * width!, 2 * total, { kernel: 'nearest' }).png().toFile(join(root, 'results/detector-synthetic.png'));
console.log(`wrote ${join(root, 'results/detector-synthetic.png')}`);
