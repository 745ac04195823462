/**
 * Training of the fusion network on the GPU: random crops and batches, noisy gates with noise drawn from a seeded
 * generator (so a resumed run continues exactly), Adam with weight decay, gradient-norm clipping, a step schedule,
 * and atomic checkpoints holding parameters, optimizer moments, step and generator state.
 */
import { Tensor } from '../graph/tensor.ts';
import { engine, tidy } from '../graph/engine.ts';
import { backward } from '../graph/autograd.ts';
import { Adam, clipGradNorm } from '../graph/optimizer.ts';
import { Rng } from '../graph/rng.ts';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import type { FusionNet } from './fusion-net.ts';
import { fusionLosses } from './losses.ts';

/** One training pair, gray in [0,1], with an optional box mask (1 inside boxes). */
export interface TrainingSample {
  width: number;
  height: number;
  ir: Float32Array;
  vis: Float32Array;
  mask?: Float32Array;
}

export interface SampleSource {
  readonly count: number;
  get(index: number): Promise<TrainingSample>;
}

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
  /** Attention for the mixtures: from the box mask, or 0.5 everywhere. */
  attention: 'boxes' | 'none';
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
  ) {
    if (source.count === 0) throw new Error('the training set is empty');
    this.rng = new Rng(opts.seed + 1);
    this.optimizer = new Adam([...net.params.values()], { lr: opts.lr, weightDecay: opts.weightDecay });
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

  private async batch(): Promise<{ ir: Float32Array; vis: Float32Array; mask: Float32Array; hasBoxes: boolean; h: number; w: number }> {
    const B = this.opts.batchSize;
    const samples: TrainingSample[] = [];
    for (let b = 0; b < B; b++) samples.push(await this.source.get(this.nextIndex()));
    const [h, w] = this.opts.crop ?? [samples[0].height, samples[0].width];
    const ir = new Float32Array(B * h * w);
    const vis = new Float32Array(B * h * w);
    const mask = new Float32Array(B * h * w);
    let hasBoxes = false;
    samples.forEach((s, b) => {
      if (s.height < h || s.width < w)
        throw new Error(`a training image of ${s.width}×${s.height} is smaller than the crop ${w}×${h}`);
      if (!this.opts.crop && (s.height !== h || s.width !== w))
        throw new Error(`images of different sizes (${samples[0].width}×${samples[0].height}, ${s.width}×${s.height}) need --crop or batch size 1`);
      const y0 = this.rng.int(s.height - h + 1);
      const x0 = this.rng.int(s.width - w + 1);
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
    return { ir, vis, mask, hasBoxes, h, w };
  }

  /** One optimisation step; returns the loss terms (read back from the GPU). */
  async trainStep(): Promise<StepResult> {
    const B = this.opts.batchSize;
    const { ir, vis, mask, hasBoxes, h, w } = await this.batch();
    const E = this.net.config.experts;
    const noise = { fg: this.rng.normal(B * E), bg: this.rng.normal(B * E), global: this.rng.normal(B * E) };
    const lr = this.lrAt(this.step);
    this.optimizer.lr = lr;
    const shape = [B, 1, h, w];
    const losses = tidy(() => {
      const irT = Tensor.fromArray(ir, shape);
      const visT = Tensor.fromArray(vis, shape);
      const maskT = Tensor.fromArray(mask, shape);
      const att = this.opts.attention === 'boxes' && hasBoxes ? maskT : null;
      const out = this.net.forward(irT, visT, att, {
        train: true,
        noise: {
          fg: Tensor.fromArray(noise.fg, [B, E]),
          bg: Tensor.fromArray(noise.bg, [B, E]),
          global: Tensor.fromArray(noise.global, [B, E]),
        },
      });
      return fusionLosses(this.net.config, out.fused, visT, irT, maskT, out.auxLoss);
    });
    backward(losses.total);
    const params = [...this.net.params.values()];
    const norm = clipGradNorm(params, this.opts.clipNorm);
    this.optimizer.step();
    this.optimizer.zeroGrad();
    const [total, grad, pixel, aux, gradNorm] = await Promise.all(
      [losses.total, losses.grad, losses.pixel, losses.aux, norm].map((t) => t.item()),
    );
    for (const t of [losses.total, losses.grad, losses.pixel, losses.aux, norm]) t.dispose();
    this.step++;
    return { step: this.step, total, grad, pixel, aux, gradNorm, lr };
  }

  /** Writes parameters, optimizer moments, step and generator state atomically. */
  async saveCheckpoint(file: string, extra: Record<string, string> = {}): Promise<void> {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of this.net.params) tensors[`param/${name}`] = { shape: [...t.shape], data: await t.data() };
    const state = await this.optimizer.exportState();
    const names = [...this.net.params.keys()];
    names.forEach((name, i) => {
      const shape = [...this.net.params.get(name)!.shape];
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
    for (const [name, t] of this.net.params) {
      const get = (key: string) => {
        const s = ck.tensors.get(key);
        if (!s) throw new Error(`${file}: checkpoint lacks ${key}`);
        if (s.shape.join() !== t.shape.join()) throw new Error(`${file}: ${key} has shape [${s.shape}], expected [${t.shape}]`);
        return s.data;
      };
      const p = get(`param/${name}`);
      t.grad?.dispose();
      t.grad = null;
      const fresh = Tensor.fromArray(p, t.shape);
      copyInto(t, fresh);
      fresh.dispose();
      m.push(get(`adam.m/${name}`));
      v.push(get(`adam.v/${name}`));
    }
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
