/**
 * Validation during training: each held-out pair is fused with the current weights in inference mode, quantised to
 * 8 bit as a saved result would be, and scored with a few `tang` protocol metrics under both output ranges (clamp,
 * and the peers' min-max stretch); the validation loss comes from the same forward pass. Scores are averaged over
 * the pairs. The frame is the whole image downscaled to fit a fixed size (so the gates route a whole scene, as at
 * test time), or in older runs its centre crop of at most 256×256. The training-free fusions are scored on the same
 * frames once (`baselines`), so that a plateau says whether the network has only matched its target.
 */
import { noGrad, tidy } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { FusionNet } from '../model/fusion-net.ts';
import { fusionLosses, type LossRecipe } from '../model/losses.ts';
import { CLASSIC_METHODS, classicFusion, type ClassicMethod } from '../model/classic-fusion.ts';
import { pixelTarget } from './trainer.ts';
import type { AttentionMode, Target } from './options.ts';
import type { SampleSource, TrainingSample } from './data.ts';
import { type Detector, fusionAttention } from '../model/detector/network.ts';
import { decodeDetections } from '../model/detector/decode.ts';
import { evaluateDetections, type ImageDetections } from '../metrics/detection-map.ts';
import { cropBoxes, scaleBoxes, type Box } from '../io/boxes.ts';
import { to8bit } from '../io/color.ts';
import { applyRange } from '../io/output-range.ts';
import { resampleRegion, type Region } from '../io/resample.ts';
import type { Image } from '../io/image.ts';
import { getProtocol, type MetricName } from '../metrics/protocols.ts';

export const VALIDATION_METRICS = ['EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'VIF', 'Qabf'] as const satisfies readonly MetricName[];
export type ValidationMetrics = Record<(typeof VALIDATION_METRICS)[number], number>;
/**
 * Fusion loss and metrics of the clamped output, the metrics of the stretched output; with a detector also its VOC
 * mAP@0.5 and COCO mAP@[.5:.95] (both detectors merged). Runs before the stretch was scored lack `stretch`.
 */
export type ValidationScores = ValidationMetrics & { loss: number; stretch?: ValidationMetrics; mAP50?: number; mAP?: number };
/** The training-free fusions' metrics on the validation frames, clamped and stretched. */
export type BaselineScores = Record<ClassicMethod, { clamp: ValidationMetrics; stretch: ValidationMetrics }>;

/** Largest side of the centre crop of runs without a validation size. */
export const VALIDATION_MAX_SIDE = 256;

/** The part of a sample that is validated, at the size it is fused. */
interface Frame {
  width: number;
  height: number;
  take(plane: Float32Array): Float32Array;
  boxes(boxes: Box[]): Box[];
}

/** The whole sample, downscaled (never enlarged) to fit `fit` [height, width] with its aspect kept. */
function wholeFrame(s: TrainingSample, fit: [number, number]): Frame {
  const scale = Math.min(1, fit[0] / s.height, fit[1] / s.width);
  const [height, width] = [Math.max(1, Math.round(s.height * scale)), Math.max(1, Math.round(s.width * scale))];
  const all: Region = { x0: 0, y0: 0, width: s.width, height: s.height };
  return {
    width,
    height,
    take: (plane) => resampleRegion(plane, s.width, all, width, height),
    boxes: (boxes) => scaleBoxes(boxes, s.width, s.height, width, height),
  };
}

/** The centre crop of a sample, no larger than maxSide in either direction. */
function centreCrop(s: TrainingSample, maxSide: number): Frame {
  const [height, width] = [Math.min(maxSide, s.height), Math.min(maxSide, s.width)];
  const r: Region = { x0: Math.floor((s.width - width) / 2), y0: Math.floor((s.height - height) / 2), width, height };
  return { width, height, take: (plane) => resampleRegion(plane, s.width, r, width, height), boxes: (boxes) => cropBoxes(boxes, r.x0, r.y0, width, height) };
}

function gray8(values: Float32Array, width: number, height: number): Image {
  return { width, height, channels: 1, bitDepth: 8, data: to8bit(values) };
}

/** The loss recipe (gradient gain, pixel weight) as in training, for the validation loss. */
export interface ValidationOptions extends LossRecipe {
  attention: AttentionMode;
  /** The pixel loss's target, as in training (the validation loss uses it). */
  target?: Target;
  /** The jointly trained detectors: their Att feeds the fusion under attention 'detector', and they are scored. */
  detector?: Detector | null;
  /** Fuse whole frames downscaled to fit this [height, width]; null: centre crops of at most 256×256. */
  size?: [number, number] | null;
  /** Told once per metric that cannot be computed at the images' size (e.g. VIF below 41 pixels); it stays NaN. */
  warn?: (message: string) => void;
}

/** Validates the network on every pair of a source; call run() after each epoch. */
export class Validator {
  private warned = new Set<string>();
  constructor(
    private net: FusionNet,
    private source: SampleSource,
    private opts: ValidationOptions,
  ) {}

  private frame(s: TrainingSample): Frame {
    return this.opts.size ? wholeFrame(s, this.opts.size) : centreCrop(s, VALIDATION_MAX_SIDE);
  }

  async run(): Promise<ValidationScores> {
    const clamp = this.sums();
    const stretch = this.sums();
    let loss = 0;
    const detections: ImageDetections[] = [];
    for (let i = 0; i < this.source.count; i++) {
      const r = await this.fuse(await this.source.get(i));
      loss += r.loss;
      this.add(clamp, r.fused, r.ir, r.vis, r.width, r.height);
      this.add(stretch, applyRange(r.fused, 'stretch'), r.ir, r.vis, r.width, r.height);
      if (r.detected) detections.push(r.detected);
    }
    const scores: ValidationScores = { loss: loss / Math.max(1, this.source.count), ...this.mean(clamp), stretch: this.mean(stretch) };
    if (this.opts.detector) {
      const d = evaluateDetections(detections, { classes: this.opts.detector.config.classes });
      Object.assign(scores, { mAP50: d.map50, mAP: d.map });
    }
    return scores;
  }

  /** The training-free fusions scored on the same frames. */
  async baselines(): Promise<BaselineScores> {
    const out = {} as BaselineScores;
    for (const method of CLASSIC_METHODS) {
      const [clamp, stretch] = [this.sums(), this.sums()];
      for (let i = 0; i < this.source.count; i++) {
        const s = await this.source.get(i);
        const f = this.frame(s);
        const [ir, vis] = [f.take(s.ir), f.take(s.vis)];
        const fused = classicFusion(method, ir, vis, f.width, f.height);
        this.add(clamp, fused, ir, vis, f.width, f.height);
        this.add(stretch, applyRange(fused, 'stretch'), ir, vis, f.width, f.height);
      }
      out[method] = { clamp: this.mean(clamp), stretch: this.mean(stretch) };
    }
    return out;
  }

  private sums(): ValidationMetrics {
    return Object.fromEntries(VALIDATION_METRICS.map((m) => [m, 0])) as ValidationMetrics;
  }

  private mean(sums: ValidationMetrics): ValidationMetrics {
    const n = Math.max(1, this.source.count);
    return Object.fromEntries(VALIDATION_METRICS.map((m) => [m, sums[m] / n])) as ValidationMetrics;
  }

  /** Adds the metrics of a fused plane (8-bit as saved) against its sources. */
  private add(sums: ValidationMetrics, fused: Float32Array, ir: Float32Array, vis: Float32Array, w: number, h: number): void {
    const [f, i, v] = [gray8(fused, w, h), gray8(ir, w, h), gray8(vis, w, h)];
    for (const m of VALIDATION_METRICS) sums[m] += this.score(m, f, i, v);
  }

  /** The fused frame with its sources, and the loss of the same forward pass. */
  private async fuse(s: TrainingSample): Promise<{ loss: number; fused: Float32Array; ir: Float32Array; vis: Float32Array; width: number; height: number; detected: ImageDetections | null }> {
    const frame = this.frame(s);
    const { width, height } = frame;
    const [ir, vis] = [frame.take(s.ir), frame.take(s.vis)];
    const mask = s.mask ? frame.take(s.mask) : new Float32Array(width * height);
    const saliency = s.saliency ? frame.take(s.saliency) : null;
    const target = s.target ? frame.take(s.target) : null;
    const shape = [1, 1, height, width];
    const detector = this.opts.detector ?? null;
    const { fused, total, heads } = noGrad(() =>
      tidy(() => {
        const [irT, visT, maskT] = [ir, vis, mask].map((a) => Tensor.fromArray(a, shape));
        const salT = saliency ? Tensor.fromArray(saliency, shape) : null;
        const targetT = target ? Tensor.fromArray(target, shape) : null;
        const det = detector ? detector.forward(irT, visT) : null;
        const mode = this.opts.attention;
        const att = mode === 'detector' && det ? fusionAttention(det, height, width) : mode === 'boxes' && s.mask ? maskT : mode === 'saliency' ? salT : null;
        const out = this.net.forward(irT, visT, att);
        const pixel = pixelTarget({ attention: mode, target: this.opts.target ?? 'reference' }, maskT, salT, targetT);
        const total = fusionLosses(this.net.config, out.fused, visT, irT, pixel, out.auxLoss, this.opts).total;
        return { fused: out.fused, total, heads: det ? [...det.heads.vis, ...det.heads.ir] : null };
      }),
    );
    const decoded = heads && detector
      ? decodeDetections(heads, { classNames: detector.config.classes, imageWidth: width, imageHeight: height, scoreThreshold: 0.05 })
      : null;
    const [fusedData, loss, boxes] = await Promise.all([fused.data(), total.item(), decoded]);
    for (const t of [fused, total, ...(heads ?? []).flatMap((h) => [h.heat, h.size, h.offset])]) t.dispose();
    const detected = boxes ? { detections: boxes[0], truths: frame.boxes(s.boxes ?? []) } : null;
    return { loss, fused: fusedData, ir, vis, width, height, detected };
  }

  private score(m: (typeof VALIDATION_METRICS)[number], fused: Image, ir: Image, vis: Image): number {
    try {
      return getProtocol('tang').score(fused, ir, vis, [m])[m];
    } catch (e) {
      if (!this.warned.has(m)) this.opts.warn?.(`validation: ${m} cannot be computed on ${fused.width}×${fused.height} images (${(e as Error).message}); it is logged as null`);
      this.warned.add(m);
      return NaN;
    }
  }
}
