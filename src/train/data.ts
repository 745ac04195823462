/**
 * Training data: samples decoded lazily from image pairs and kept for the next passes (PairSource), and batches of
 * random crops drawn from a sample source in a seeded order (Batcher, whose order is part of a checkpoint).
 */
import { readImage } from '../io/image.ts';
import { toGray01 } from '../io/color.ts';
import { boxMask, cropBoxes, scaleBoxes, type Box, type BoxSource } from '../io/boxes.ts';
import type { ImagePair } from '../io/dataset.ts';
import type { Rng } from '../util/rng.ts';
import { TrainingError } from './errors.ts';
import { infraredSaliency } from '../model/saliency.ts';
import { resampleRegion, type Region } from '../io/resample.ts';
import { formatSize, type Target } from './options.ts';
import { targetImage } from './targets.ts';

/** One training pair, gray in [0,1], with an optional box mask (1 inside boxes) and the boxes themselves. */
export interface TrainingSample {
  width: number;
  height: number;
  ir: Float32Array;
  vis: Float32Array;
  mask?: Float32Array;
  boxes?: Box[];
  /** The infrared image's saliency (model/saliency.ts), when the run trains with attention 'saliency'. */
  saliency?: Float32Array;
  /** The pixel loss's target image, when the run trains towards one (target 'multiscale'). */
  target?: Float32Array;
}

export interface SampleSource {
  readonly count: number;
  get(index: number): Promise<TrainingSample>;
}

/** A pair of a dataset with the boxes source of its dataset (null without labels). */
export type LabelledPair = ImagePair & { boxes: BoxSource | null };

/** What batches need of every image: at least the crop, [height, width]; one size for all when whole images are batched. */
export interface BatchShape {
  batchSize: number;
  /** Random crop [height, width]; null batches whole images. */
  crop: [number, number] | null;
  /** Flip each crop left to right with probability ½. */
  flip?: boolean;
  /** Crops cover crop × s pixels, s log-uniform in [min, max], resized down to the crop; absent: [1, 1]. */
  cropScale?: [number, number];
  /** Where Att comes from: 'saliency' makes the source compute each infrared image's saliency. */
  attention?: string;
  /** The pixel loss's target: 'multiscale' makes the source compute each pair's target image. */
  target?: Target;
  /** The multi-scale target's factor on its detail layers. */
  detailGain?: number;
}


/**
 * Decodes pairs lazily and keeps them (gray floats) for the next passes. Checks what batches need of each image,
 * so that the error names the file.
 */
export class PairSource implements SampleSource {
  private cache = new Map<number, TrainingSample>();
  private firstSize: string | null = null;
  constructor(
    private pairs: LabelledPair[],
    private shape: BatchShape,
  ) {}

  get count(): number {
    return this.pairs.length;
  }

  async get(i: number): Promise<TrainingSample> {
    const hit = this.cache.get(i);
    if (hit) return hit;
    const p = this.pairs[i];
    if (!p) throw new RangeError(`PairSource: no pair ${i} of ${this.pairs.length}`);
    const [ir, vi] = [await readImage(p.ir), await readImage(p.vi)];
    if (ir.width !== vi.width || ir.height !== vi.height)
      throw new TrainingError(`${p.ir} is ${ir.width}×${ir.height} but ${p.vi} is ${vi.width}×${vi.height}: a pair must have one size`);
    const { crop, batchSize } = this.shape;
    if (crop && (ir.height < crop[0] || ir.width < crop[1]))
      throw new TrainingError(`${p.ir} is ${ir.width}×${ir.height}, smaller than --crop ${formatSize(crop)} (WIDTHxHEIGHT)`);
    const size = `${ir.width}×${ir.height}`;
    this.firstSize ??= size;
    if (!crop && batchSize > 1 && size !== this.firstSize)
      throw new TrainingError(`${p.ir} is ${size} but other pairs are ${this.firstSize}: batching whole images needs one size; use --crop or --batch 1`);
    const boxes = p.boxes?.read(p.name, { width: ir.width, height: ir.height }) ?? [];
    const irGray = toGray01(ir, 'first');
    const s: TrainingSample = {
      width: ir.width,
      height: ir.height,
      ir: irGray,
      vis: toGray01(vi, 'luma'),
      mask: boxes.length ? boxMask(boxes, ir.width, ir.height) : undefined,
      boxes,
      saliency: this.shape.attention === 'saliency' ? infraredSaliency(irGray) : undefined,
    };
    if (this.shape.target === 'multiscale') s.target = targetImage('multiscale', s, { detailGain: this.shape.detailGain });
    this.cache.set(i, s);
    return s;
  }
}

/** A batch (B,1,H,W) of planes in [0,1], the box mask (zeros without boxes) and each crop's boxes. */
export interface Batch {
  size: number;
  height: number;
  width: number;
  ir: Float32Array;
  vis: Float32Array;
  mask: Float32Array;
  /** Each crop's infrared saliency, when the samples carry it. */
  saliency: Float32Array | null;
  /** Each crop's target image, when the samples carry one. */
  target: Float32Array | null;
  boxes: Box[][];
  /** Whether any sample of the batch has a box mask. */
  hasBoxes: boolean;
}

/** Where the Batcher is in its current pass: the pass's order of sample indices and the next position in it. */
export interface BatcherState {
  order: number[];
  cursor: number;
}

/**
 * Batches of random crops from a source: passes over the data in fresh random orders, crops at random places. Every
 * draw comes from `rng` (shared with the trainer's gate noise), so the state of `rng` and of the order is all a
 * resume needs.
 */
export class Batcher {
  private order: number[] = [];
  private cursor = 0;

  constructor(
    readonly source: SampleSource,
    readonly shape: BatchShape,
    private rng: Rng,
  ) {
    if (source.count === 0) throw new TrainingError('the training set is empty');
  }

  get state(): BatcherState {
    return { order: [...this.order], cursor: this.cursor };
  }

  /** Restores a saved state; it must be a pass over this source (the same number of samples). */
  set state(s: BatcherState) {
    const n = this.source.count;
    const isPass = s.order.length === 0 || (s.order.length === n && new Set(s.order).size === n && s.order.every((i) => Number.isInteger(i) && i >= 0 && i < n));
    if (!isPass) throw new TrainingError(`the saved data order is a pass over ${s.order.length} samples, but the training set has ${n}`);
    if (!Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor > s.order.length) throw new TrainingError(`the saved data position ${s.cursor} is outside its pass`);
    this.order = [...s.order];
    this.cursor = s.cursor;
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

  async next(): Promise<Batch> {
    const B = this.shape.batchSize;
    const samples: TrainingSample[] = [];
    for (let b = 0; b < B; b++) samples.push(await this.source.get(this.nextIndex()));
    const [h, w] = this.shape.crop ?? [samples[0].height, samples[0].width];
    const plane = () => new Float32Array(B * h * w);
    const [ir, vis, mask] = [plane(), plane(), plane()];
    const saliency = samples.every((s) => s.saliency) ? plane() : null;
    const target = samples.every((s) => s.target) ? plane() : null;
    let hasBoxes = false;
    const boxes: Box[][] = [];
    samples.forEach((s, b) => {
      if (s.height < h || s.width < w) throw new TrainingError(`a training image of ${s.width}×${s.height} is smaller than the crop ${w}×${h}`);
      if (!this.shape.crop && (s.height !== h || s.width !== w))
        throw new TrainingError(`images of different sizes (${samples[0].width}×${samples[0].height}, ${s.width}×${s.height}) need --crop or batch size 1`);
      const r = this.region(s, h, w);
      // Drawn only when flips are on, so that runs without them keep their random sequence.
      const flip = this.shape.flip === true && this.rng.next() < 0.5;
      const cropped = scaleBoxes(cropBoxes(s.boxes ?? [], r.x0, r.y0, r.width, r.height), r.width, r.height, w, h);
      boxes.push(flip ? cropped.map((bx) => ({ ...bx, x0: w - bx.x1, x1: w - bx.x0 })) : cropped);
      const take = (from: Float32Array, to: Float32Array) => to.set(resampleRegion(from, s.width, r, w, h, flip), b * h * w);
      take(s.ir, ir);
      take(s.vis, vis);
      if (s.mask) {
        take(s.mask, mask);
        hasBoxes = true;
      }
      if (saliency) take(s.saliency!, saliency);
      if (target) take(s.target!, target);
    });
    return { size: B, height: h, width: w, ir, vis, mask, saliency, target, boxes, hasBoxes };
  }

  /**
   * Where the next crop lies: h × w pixels at a random place, or with a crop scale, a region s times as large (s
   * log-uniform in the scale range, at most what the image holds) to be resized down to h × w.
   */
  private region(s: TrainingSample, h: number, w: number): Region {
    const [lo, hi] = this.shape.cropScale ?? [1, 1];
    let [rh, rw] = [h, w];
    // Drawn only with a scale range, so that runs without one keep their random sequence.
    if (hi > 1) {
      const most = Math.min(hi, s.height / h, s.width / w);
      const least = Math.min(lo, most);
      const scale = least * (most / least) ** this.rng.next();
      [rh, rw] = [Math.max(h, Math.min(s.height, Math.round(h * scale))), Math.max(w, Math.min(s.width, Math.round(w * scale)))];
    }
    return { y0: this.rng.int(s.height - rh + 1), x0: this.rng.int(s.width - rw + 1), height: rh, width: rw };
  }
}
