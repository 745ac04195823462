/**
 * The detectors' demonstration of docs/detectors.md: trains both detectors from scratch on 64×64 synthetic scenes with the
 * recipe test/detector-learning.test.ts checks (train/synthetic-detector.ts, 500 steps), stores them beside the shipped fusion weights in
 * OUT/weights.safetensors, writes four new 128×128 scenes to OUT/data, runs `moefusion detect` on them and stacks
 * its pictures into results/detector-synthetic.png.
 *   npx tsx scripts/detector-demo.ts [OUT=out/detector-demo]
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { initEngine, shutdownEngine } from '../src/tensor/engine.ts';
import { writeSyntheticDataset } from '../src/train/synthetic-scenes.ts';
import { trainSyntheticDetector } from '../src/train/synthetic-detector.ts';
import { loadWeightsWithConfig, saveWeights } from '../src/model/weights-file.ts';
import { DEFAULT_WEIGHTS } from '../src/cli/defaults.ts';

const root = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(root, 'out/detector-demo'));
await initEngine();
const { detector } = await trainSyntheticDetector((step, loss) => {
  if (step % 100 === 0) console.log(`step ${step}: loss ${loss.toFixed(3)}`);
});
rmSync(out, { recursive: true, force: true });
const weights = join(out, 'weights.safetensors');
await saveWeights(weights, loadWeightsWithConfig(DEFAULT_WEIGHTS), { inferenceOnly: true, detector });
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
