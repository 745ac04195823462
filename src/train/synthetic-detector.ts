/**
 * The short recipe that shows the detectors learning: both trained alone (no fusion network) from scratch on 64×64
 * synthetic scenes. test/detector-learning.test.ts checks what it reaches; scripts/detector-demo.ts pictures it.
 */
import { Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { backward } from '../autograd/tape.ts';
import { Adam } from '../optim/optimizer.ts';
import { syntheticScene, SYNTHETIC_CLASSES, type SceneOptions, type SyntheticScene } from './synthetic-scenes.ts';
import type { DetectorConfig } from '../model/detector/config.ts';
import { Detector } from '../model/detector/network.ts';
import { buildTargets } from '../model/detector/targets.ts';
import { detectorLoss } from '../model/detector/losses.ts';

export const SYNTHETIC_SIZE = 64;
export const SYNTHETIC_DETECTOR: DetectorConfig = { classes: [...SYNTHETIC_CLASSES], backbone: [8, 16, 16, 16], fpn: 16, head: 16 };
export const SYNTHETIC_SCENE: SceneOptions = { width: SYNTHETIC_SIZE, height: SYNTHETIC_SIZE, maxObjects: 3, minSize: 10, maxSize: 29 };
export const SYNTHETIC_RECIPE = { steps: 500, batchSize: 4, lr: 5e-3, weightDecay: 1e-4, trainScenes: 256 };

/** Training scene k of the recipe (held-out scenes use other seeds). */
export const syntheticTrainingScene = (k: number): SyntheticScene => syntheticScene(1000 + k, SYNTHETIC_SCENE);

/**
 * Trains a new detector on the recipe's scenes, taken in order, batch after batch; returns it with the loss of every
 * step. Each step reads its loss back, which also lets the GPU release finished work.
 */
export async function trainSyntheticDetector(onStep?: (step: number, loss: number) => void): Promise<{ detector: Detector; losses: number[] }> {
  const { steps, batchSize: B, lr, weightDecay, trainScenes } = SYNTHETIC_RECIPE;
  const S = SYNTHETIC_SIZE;
  const train = Array.from({ length: trainScenes }, (_, k) => syntheticTrainingScene(k));
  const detector = Detector.init(SYNTHETIC_DETECTOR, 1);
  const adam = new Adam(detector.parameters().map(([, t]) => t), { lr, weightDecay });
  const planes = (batch: SyntheticScene[], k: 'ir' | 'vis') => {
    const a = new Float32Array(B * S * S);
    batch.forEach((s, b) => a.set(s[k], b * S * S));
    return Tensor.fromArray(a, [B, 1, S, S]);
  };
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const batch = Array.from({ length: B }, (_, b) => train[(step * B + b) % train.length]);
    const loss = tidy(() => {
      const out = detector.forward(planes(batch, 'ir'), planes(batch, 'vis'), { training: true });
      return detectorLoss(out, buildTargets(batch.map((s) => s.boxes), S, S, SYNTHETIC_DETECTOR.classes));
    });
    backward(loss);
    adam.step();
    adam.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
    onStep?.(step + 1, losses[step]);
  }
  adam.dispose();
  return { detector, losses };
}
