/**
 * Training of the fusion network on the GPU: random crops and batches, noisy gates with noise drawn from a seeded
 * generator (so a resumed run continues exactly), Adam with weight decay, gradient-norm clipping, a step schedule,
 * and atomic checkpoints holding parameters, optimizer moments, step and generator state.
 */
import { Tensor } from '../tensor/tensor.ts';
import { engine, tidy } from '../tensor/engine.ts';
import { add } from '../ops/index.ts';
import { backward } from '../autograd/tape.ts';
import { Adam, clipGradNorm } from '../optim/optimizer.ts';
import { Rng } from '../util/rng.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { type SafetensorsFile } from '../io/safetensors.ts';
import type { FusionNet } from './fusion-net.ts';
import { fusionLosses } from './losses.ts';
import { cropBoxes, type Box } from '../io/boxes.ts';
import { Detector, fusionAttention } from './detector/network.ts';
import { detectorLoss } from './detector/losses.ts';
import { buildTargets } from './detector/targets.ts';

/** One training pair, gray in [0,1], with an optional box mask (1 inside boxes) and the boxes themselves. */
export interface TrainingSample {
  width: number;
  height: number;
  ir: Float32Array;
  vis: Float32Array;
  mask?: Float32Array;
  boxes?: Box[];
}

export interface SampleSource {
  readonly count: number;
  get(index: number): Promise<TrainingSample>;
}

export type AttentionMode = 'boxes' | 'none' | 'detector';

export interface TrainOptions {
  steps: number;
  batchSize: number;
  /** Random crop [height, width]; null trains on whole images (all of one size). */
  crop: [number, number] | null;
  lr: number;
  weightDecay: number;
  clipNorm: number;
  /** Steps after which the learning rate is multiplied by `gamma`. */
  milestones: number[];
  gamma: number;
  seed: number;
  /** Attention for the mixtures: from the box mask, 0.5 everywhere, or the detectors' (trained jointly). */
  attention: AttentionMode;
}

/** The reference's settings (docs/moe-fusion.md §6), for a run of `steps` steps. */
export function referenceOptions(steps: number): TrainOptions {
  return {
    steps,
    batchSize: 4,
    crop: null,
    lr: 1e-4,
    weightDecay: 1e-4,
    clipNorm: 35,
    milestones: [Math.round((steps * 48) / 72), Math.round((steps * 66) / 72)],
    gamma: 0.1,
    seed: 0,
    attention: 'boxes',
  };
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
  readonly rng: Rng;
  readonly optimizer: Adam;
  step = 0;
  private order: number[] = [];
  private cursor = 0;

  constructor(
    readonly net: FusionNet,
    readonly source: SampleSource,
    readonly opts: TrainOptions,
    /** Trained jointly (its detection losses only reach it: Att is detached), required by attention 'detector'. */
    readonly detector: Detector | null = null,
  ) {
    if (source.count === 0) throw new Error('the training set is empty');
    if (opts.attention === 'detector' && !detector) throw new Error("attention 'detector' needs a detector");
    this.rng = new Rng(opts.seed + 1);
    this.optimizer = new Adam(this.named().map(([, t]) => t), { lr: opts.lr, weightDecay: opts.weightDecay });
  }

  /** Every trained parameter with its name: the fusion network's, then the detector's. */
  private named(): Array<[string, Tensor]> {
    return [...this.net.params, ...(this.detector?.params ?? [])];
  }

  /** Learning rate at a step under the schedule. */
  lrAt(step: number): number {
    return this.opts.lr * this.opts.gamma ** this.opts.milestones.filter((m) => step >= m).length;
  }

  private nextIndex(): number {
    if (this.cursor >= this.order.length) {
      // A new pass over the data in a fresh random order.
      this.order = [...Array(this.source.count).keys()];
      for (let i = this.order.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        [this.order[i], this.order[j]] = [this.order[j], this.order[i]];
      }
      this.cursor = 0;
    }
    return this.order[this.cursor++];
  }

  private async batch(): Promise<{ ir: Float32Array; vis: Float32Array; mask: Float32Array; boxes: Box[][]; hasBoxes: boolean; h: number; w: number }> {
    const B = this.opts.batchSize;
    const samples: TrainingSample[] = [];
    for (let b = 0; b < B; b++) samples.push(await this.source.get(this.nextIndex()));
    const [h, w] = this.opts.crop ?? [samples[0].height, samples[0].width];
    const ir = new Float32Array(B * h * w);
    const vis = new Float32Array(B * h * w);
    const mask = new Float32Array(B * h * w);
    let hasBoxes = false;
    const boxes: Box[][] = [];
    samples.forEach((s, b) => {
      if (s.height < h || s.width < w)
        throw new Error(`a training image of ${s.width}×${s.height} is smaller than the crop ${w}×${h}`);
      if (!this.opts.crop && (s.height !== h || s.width !== w))
        throw new Error(`images of different sizes (${samples[0].width}×${samples[0].height}, ${s.width}×${s.height}) need --crop or batch size 1`);
      const y0 = this.rng.int(s.height - h + 1);
      const x0 = this.rng.int(s.width - w + 1);
      boxes.push(cropBoxes(s.boxes ?? [], x0, y0, w, h));
      for (let y = 0; y < h; y++) {
        const src = (y0 + y) * s.width + x0;
        const dst = (b * h + y) * w;
        ir.set(s.ir.subarray(src, src + w), dst);
        vis.set(s.vis.subarray(src, src + w), dst);
        if (s.mask) {
          mask.set(s.mask.subarray(src, src + w), dst);
          hasBoxes = true;
        }
      }
    });
    return { ir, vis, mask, boxes, hasBoxes, h, w };
  }

  /** One optimisation step; returns the loss terms (read back from the GPU). */
  async trainStep(): Promise<StepResult> {
    const B = this.opts.batchSize;
    const { ir, vis, mask, boxes, hasBoxes, h, w } = await this.batch();
    const E = this.net.config.experts;
    const noise = { fg: this.rng.normal(B * E), bg: this.rng.normal(B * E), global: this.rng.normal(B * E) };
    const lr = this.lrAt(this.step);
    this.optimizer.lr = lr;
    const shape = [B, 1, h, w];
    const losses = tidy(() => {
      const irT = Tensor.fromArray(ir, shape);
      const visT = Tensor.fromArray(vis, shape);
      const maskT = Tensor.fromArray(mask, shape);
      let att = this.opts.attention === 'boxes' && hasBoxes ? maskT : null;
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
      const fusion = fusionLosses(this.net.config, out.fused, visT, irT, maskT, out.auxLoss);
      return { ...fusion, total: detection ? add(fusion.total, detection) : fusion.total, detection };
    });
    backward(losses.total);
    const norm = clipGradNorm(this.named().map(([, t]) => t), this.opts.clipNorm);
    this.optimizer.step();
    this.optimizer.zeroGrad();
    const scalars = [losses.total, losses.grad, losses.pixel, losses.aux, norm, ...(losses.detection ? [losses.detection] : [])];
    const [total, grad, pixel, aux, gradNorm, detection] = await Promise.all(scalars.map((t) => t.item()));
    for (const t of scalars) t.dispose();
    this.step++;
    return { step: this.step, total, grad, pixel, aux, ...(detection === undefined ? {} : { detection }), gradNorm, lr };
  }

  /** Writes parameters, optimizer moments, step and generator state atomically. */
  async saveCheckpoint(file: string, extra: Record<string, string> = {}): Promise<void> {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    const named = this.named();
    for (const [name, t] of named) tensors[`param/${name}`] = { shape: [...t.shape], data: await t.data() };
    for (const [name, t] of this.detector?.tensors.buffers ?? []) tensors[`buffer/${name}`] = { shape: [...t.shape], data: await t.data() };
    const state = await this.optimizer.exportState();
    named.forEach(([name, t], i) => {
      const shape = [...t.shape];
      tensors[`adam.m/${name}`] = { shape, data: state.m[i] };
      tensors[`adam.v/${name}`] = { shape, data: state.v[i] };
    });
    const meta = {
      step: this.step,
      adamStep: state.step,
      rng: this.rng.state,
      order: this.order,
      cursor: this.cursor,
      config: this.net.config,
      detector: this.detector?.config ?? null,
      options: this.opts,
    };
    writeSafetensors(file, tensors, { dtype: 'F32', metadata: { 'moefusion.checkpoint': JSON.stringify(meta), ...extra } });
  }

  /**
   * Restores a checkpoint written by saveCheckpoint into this trainer (same network layout). `contents` spares a
   * second read when the caller has already read the file (e.g. for its configuration).
   */
  async loadCheckpoint(file: string, contents?: SafetensorsFile): Promise<void> {
    const ck = contents ?? readSafetensors(file);
    const metaText = ck.metadata['moefusion.checkpoint'];
    if (!metaText) throw new Error(`${file}: not a moefusion checkpoint (no 'moefusion.checkpoint' metadata)`);
    const meta = JSON.parse(metaText);
    const m: Float32Array[] = [];
    const v: Float32Array[] = [];
    const restore = (t: Tensor, data: Float32Array) => {
      const fresh = Tensor.fromArray(data, t.shape);
      copyInto(t, fresh);
      fresh.dispose();
    };
    const get = (key: string, t: Tensor) => {
      const s = ck.tensors.get(key);
      if (!s) throw new Error(`${file}: checkpoint lacks ${key}`);
      if (s.shape.join() !== t.shape.join()) throw new Error(`${file}: ${key} has shape [${s.shape}], expected [${t.shape}]`);
      return s.data;
    };
    for (const [name, t] of this.named()) {
      t.grad?.dispose();
      t.grad = null;
      restore(t, get(`param/${name}`, t));
      m.push(get(`adam.m/${name}`, t));
      v.push(get(`adam.v/${name}`, t));
    }
    for (const [name, t] of this.detector?.tensors.buffers ?? []) restore(t, get(`buffer/${name}`, t));
    this.optimizer.importState({ step: meta.adamStep, m, v });
    this.step = meta.step;
    this.rng.state = meta.rng;
    this.order = meta.order;
    this.cursor = meta.cursor;
  }
}

/** Parameters keep their identity (the optimizer holds them): their data is overwritten in place. */
function copyInto(dst: Tensor, src: Tensor): void {
  engine().rt.copy(src.buffer, 0, dst.buffer, 0, src.bytes);
}
