/**
 * One training step of the fusion network on the GPU (and of the detectors under attention 'detector'): a batch of
 * random crops, the forward pass with gate noise drawn from the trainer's seeded generator (so a resumed run
 * continues exactly), the losses, backward, gradient-norm clipping, Adam with weight decay and the step schedule.
 * Checkpoints are in checkpoint.ts.
 */
import { Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { add } from '../ops/index.ts';
import { backward } from '../autograd/tape.ts';
import { Adam, clipGradNorm } from '../optim/optimizer.ts';
import { Rng } from '../util/rng.ts';
import type { FusionNet } from '../model/fusion-net.ts';
import { fusionLosses, type PixelTarget } from '../model/losses.ts';
import { type Detector, fusionAttention } from '../model/detector/network.ts';
import { detectorLoss } from '../model/detector/losses.ts';
import { buildTargets } from '../model/detector/targets.ts';
import { Batcher, type SampleSource } from './data.ts';
import { TrainingError } from './errors.ts';
import type { TrainOptions } from './options.ts';

export interface StepResult {
  step: number;
  total: number;
  grad: number;
  pixel: number;
  aux: number;
  /** Detection losses of both detectors (weight 1 each), when a detector trains. */
  detection?: number;
  gradNorm: number;
  lr: number;
}

export class Trainer {
  /** The one generator of the run: data order, crops and gate noise (its state is saved in checkpoints). */
  readonly rng: Rng;
  readonly optimizer: Adam;
  readonly batcher: Batcher;
  step = 0;

  constructor(
    readonly net: FusionNet,
    source: SampleSource,
    readonly opts: TrainOptions,
    /** Trained jointly (its detection losses only reach it: Att is detached), required by attention 'detector'. */
    readonly detector: Detector | null = null,
  ) {
    if (opts.attention === 'detector' && !detector) throw new TrainingError("attention 'detector' needs a detector");
    this.rng = new Rng(opts.seed + 1);
    this.batcher = new Batcher(source, opts, this.rng);
    this.optimizer = new Adam(this.parameters().map(([, t]) => t), { lr: opts.lr, weightDecay: opts.weightDecay });
  }

  /** Every trained parameter with its name: the fusion network's, then the detector's. */
  parameters(): Array<[string, Tensor]> {
    return [...this.net.parameters(), ...(this.detector?.parameters() ?? [])];
  }

  /** The state that is not learnt (the detector's batch-norm statistics), with names. */
  buffers(): Array<[string, Tensor]> {
    return [...this.net.buffers(), ...(this.detector?.buffers() ?? [])];
  }

  /** Learning rate at a step under the schedule. */
  lrAt(step: number): number {
    const { lr, warmup, schedule, steps } = this.opts;
    if (step < warmup) return (lr * (step + 1)) / warmup;
    if (schedule === 'cosine') return 0.5 * lr * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, steps - warmup)));
    return lr * this.opts.gamma ** this.opts.milestones.filter((m) => step >= m).length;
  }

  /** One optimisation step; returns the loss terms (read back from the GPU). */
  async trainStep(): Promise<StepResult> {
    const { size: B, height: h, width: w, ir, vis, mask, saliency, target, boxes, hasBoxes } = await this.batcher.next();
    const E = this.net.config.experts;
    const noise = { fg: this.rng.normal(B * E), bg: this.rng.normal(B * E), global: this.rng.normal(B * E) };
    const lr = this.lrAt(this.step);
    this.optimizer.lr = lr;
    const shape = [B, 1, h, w];
    const losses = tidy(() => {
      const irT = Tensor.fromArray(ir, shape);
      const visT = Tensor.fromArray(vis, shape);
      const maskT = Tensor.fromArray(mask, shape);
      const salT = saliency ? Tensor.fromArray(saliency, shape) : null;
      const targetT = target ? Tensor.fromArray(target, shape) : null;
      let att = this.opts.attention === 'boxes' && hasBoxes ? maskT : this.opts.attention === 'saliency' ? salT : null;
      let detection: Tensor | null = null;
      if (this.detector) {
        const det = this.detector.forward(irT, visT, { training: true });
        const targets = buildTargets(boxes, h, w, this.detector.config.classes);
        detection = detectorLoss(det, targets);
        if (this.opts.attention === 'detector') att = fusionAttention(det, h, w);
      }
      const out = this.net.forward(irT, visT, att, {
        train: true,
        noise: {
          fg: Tensor.fromArray(noise.fg, [B, E]),
          bg: Tensor.fromArray(noise.bg, [B, E]),
          global: Tensor.fromArray(noise.global, [B, E]),
        },
      });
      const fusion = fusionLosses(this.net.config, out.fused, visT, irT, pixelTarget(this.opts, maskT, salT, targetT), out.auxLoss, this.opts);
      return { ...fusion, total: detection ? add(fusion.total, detection) : fusion.total, detection };
    });
    backward(losses.total);
    const norm = clipGradNorm(this.parameters().map(([, t]) => t), this.opts.clipNorm);
    this.optimizer.step();
    this.optimizer.zeroGrad();
    const scalars = [losses.total, losses.grad, losses.pixel, losses.aux, norm, ...(losses.detection ? [losses.detection] : [])];
    const [total, grad, pixel, aux, gradNorm, detection] = await Promise.all(scalars.map((t) => t.item()));
    for (const t of scalars) t.dispose();
    this.step++;
    return { step: this.step, total, grad, pixel, aux, ...(detection === undefined ? {} : { detection }), gradNorm, lr };
  }
}

/**
 * What the pixel loss compares with under the run's target: the target image (multiscale); for max, a foreground of
 * ones (max(vis, ir) everywhere); for the reference, the saliency map under attention 'saliency', else the box mask
 * (zeros without boxes: the mean of the sources everywhere).
 */
export function pixelTarget(opts: Pick<TrainOptions, 'attention' | 'target'>, boxMask: Tensor, saliency: Tensor | null, image: Tensor | null): PixelTarget {
  if (opts.target === 'multiscale') {
    if (!image) throw new Error('target multiscale needs the target images of the batch');
    return { image };
  }
  if (opts.target === 'max') return { mask: Tensor.full(boxMask.shape, 1) };
  if (opts.attention === 'saliency') {
    if (!saliency) throw new Error('attention saliency needs the saliency planes of the batch');
    return { mask: saliency };
  }
  return { mask: boxMask };
}
