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
import { fusionLosses } from '../model/losses.ts';
import { type Detector, fusionAttention } from '../model/detector/network.ts';
import { detectorLoss } from '../model/detector/losses.ts';
import { buildTargets } from '../model/detector/targets.ts';
import { Batcher, type SampleSource } from './data.ts';
import { TrainingError } from './errors.ts';

/**
 * Where Att, the mixtures' foreground map, comes from in training: the box mask, 0.5 everywhere, the detectors
 * (trained jointly), or the infrared saliency (model/saliency.ts) for data without boxes.
 */
export type AttentionMode = 'boxes' | 'none' | 'detector' | 'saliency';
export const ATTENTION_MODES: readonly AttentionMode[] = ['boxes', 'none', 'detector', 'saliency'];

/** Where the pixel loss takes the max of the sources: where Att is (the reference: the box mask), or everywhere. */
export type ForegroundMode = 'attention' | 'all';

export interface TrainOptions {
  steps: number;
  batchSize: number;
  /** Random crop [height, width] (tensor order; the command line writes WIDTHxHEIGHT); null trains on whole images (all of one size). */
  crop: [number, number] | null;
  lr: number;
  weightDecay: number;
  clipNorm: number;
  /** Steps after which the learning rate is multiplied by `gamma`. */
  milestones: number[];
  gamma: number;
  seed: number;
  /** Attention for the mixtures: from the box mask, 0.5 everywhere, the detectors' (trained jointly), or the infrared saliency. */
  attention: AttentionMode;
  /** The pixel loss's foreground M: the attention map (boxes: the box mask), or all pixels (the max of the sources everywhere). */
  foreground: ForegroundMode;
  /** 'step': ×gamma at the milestones (the reference); 'cosine': half a cosine from lr down to 0 over the run. */
  schedule: 'step' | 'cosine';
  /** Steps of linear warm-up from 0 to lr at the start. */
  warmup: number;
  /** Flips each crop left to right with probability ½. */
  flip: boolean;
}

/** Options added after the first checkpoints were written, with the values those runs had. */
export const LATER_OPTIONS: Pick<TrainOptions, 'foreground' | 'schedule' | 'warmup' | 'flip'> = { foreground: 'attention', schedule: 'step', warmup: 0, flip: false };

/** The reference's settings (docs/moe-fusion.md §6), for a run of `steps` steps. */
export function referenceOptions(steps: number): TrainOptions {
  return {
    steps,
    batchSize: 4,
    crop: null,
    lr: 1e-4,
    weightDecay: 1e-4,
    clipNorm: 35,
    milestones: referenceMilestones(steps),
    gamma: 0.1,
    seed: 0,
    attention: 'boxes',
    ...LATER_OPTIONS,
  };
}

/** The reference's learning-rate milestones for a run of `steps` steps: 2/3 and 11/12 of it. */
export function referenceMilestones(steps: number): number[] {
  return [Math.round((steps * 48) / 72), Math.round((steps * 66) / 72)];
}

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
    return [...this.net.params, ...(this.detector?.params ?? [])];
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
    const { size: B, height: h, width: w, ir, vis, mask, saliency, boxes, hasBoxes } = await this.batcher.next();
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
      const fusion = fusionLosses(this.net.config, out.fused, visT, irT, lossMask(this.opts, maskT, salT), out.auxLoss);
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

/** The pixel loss's foreground M: ones everywhere, the saliency map under attention 'saliency', else the box mask (zeros without boxes). */
export function lossMask(opts: Pick<TrainOptions, 'attention' | 'foreground'>, boxMask: Tensor, saliency: Tensor | null): Tensor {
  if (opts.foreground === 'all') return Tensor.full(boxMask.shape, 1);
  if (opts.attention === 'saliency') {
    if (!saliency) throw new Error('attention saliency needs the saliency planes of the batch');
    return saliency;
  }
  return boxMask;
}
