/**
 * Validation during training: each held-out pair is fused with the current weights in inference mode (whole
 * image, or its centre crop of at most 256×256 so that a pass stays cheap on software adapters), quantised to 8 bit
 * as a saved result would be, and scored with a few `tang` protocol metrics; the validation loss comes from the
 * same forward pass. Scores are averaged over the pairs.
 */
import { noGrad, tidy } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { FusionNet } from '../model/fusion-net.ts';
import { fusionLosses } from '../model/losses.ts';
import { lossMask, type AttentionMode, type ForegroundMode } from './trainer.ts';
import type { SampleSource, TrainingSample } from './data.ts';
import { type Detector, fusionAttention } from '../model/detector/network.ts';
import { decodeDetections } from '../model/detector/decode.ts';
import { evaluateDetections, type ImageDetections } from '../metrics/detection-map.ts';
import { cropBoxes } from '../io/boxes.ts';
import { to8bit } from '../io/color.ts';
import type { Image } from '../io/image.ts';
import { getProtocol, type MetricName } from '../metrics/protocols.ts';

export const VALIDATION_METRICS = ['EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'VIF', 'Qabf'] as const satisfies readonly MetricName[];
/** Fusion loss and metrics; with a detector also its VOC mAP@0.5 and COCO mAP@[.5:.95] (both detectors merged). */
export type ValidationScores = Record<'loss' | (typeof VALIDATION_METRICS)[number], number> & { mAP50?: number; mAP?: number };

/** Largest side of the validated region. */
export const VALIDATION_MAX_SIDE = 256;

interface Crop {
  x0: number;
  y0: number;
  width: number;
  height: number;
  take(plane: Float32Array): Float32Array;
}

/** The centre crop of a sample, no larger than maxSide in either direction. */
function centreCrop(s: TrainingSample, maxSide: number): Crop {
  const [height, width] = [Math.min(maxSide, s.height), Math.min(maxSide, s.width)];
  const [y0, x0] = [Math.floor((s.height - height) / 2), Math.floor((s.width - width) / 2)];
  return {
    x0,
    y0,
    width,
    height,
    take(plane) {
      const out = new Float32Array(width * height);
      for (let y = 0; y < height; y++) out.set(plane.subarray((y0 + y) * s.width + x0, (y0 + y) * s.width + x0 + width), y * width);
      return out;
    },
  };
}

function gray8(values: Float32Array, width: number, height: number): Image {
  return { width, height, channels: 1, bitDepth: 8, data: to8bit(values) };
}

export interface ValidationOptions {
  attention: AttentionMode;
  /** The pixel loss's foreground, as in training (the validation loss uses it). */
  foreground?: ForegroundMode;
  /** The jointly trained detectors: their Att feeds the fusion under attention 'detector', and they are scored. */
  detector?: Detector | null;
  maxSide?: number;
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

  async run(): Promise<ValidationScores> {
    const sums = Object.fromEntries(['loss', ...VALIDATION_METRICS].map((k) => [k, 0])) as ValidationScores;
    const detections: ImageDetections[] = [];
    for (let i = 0; i < this.source.count; i++) {
      const { loss, fused, ir, vis, detected } = await this.fuse(await this.source.get(i));
      sums.loss += loss;
      for (const m of VALIDATION_METRICS) sums[m] += this.score(m, fused, ir, vis);
      if (detected) detections.push(detected);
    }
    const n = Math.max(1, this.source.count);
    const scores = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])) as ValidationScores;
    if (this.opts.detector) {
      const d = evaluateDetections(detections, { classes: this.opts.detector.config.classes });
      Object.assign(scores, { mAP50: d.map50, mAP: d.map });
    }
    return scores;
  }

  /** The fused centre crop (8-bit, as saved) with its sources, and the loss of the same forward pass. */
  private async fuse(s: TrainingSample): Promise<{ loss: number; fused: Image; ir: Image; vis: Image; detected: ImageDetections | null }> {
    const crop = centreCrop(s, this.opts.maxSide ?? VALIDATION_MAX_SIDE);
    const [ir, vis] = [crop.take(s.ir), crop.take(s.vis)];
    const mask = s.mask ? crop.take(s.mask) : new Float32Array(crop.width * crop.height);
    const saliency = s.saliency ? crop.take(s.saliency) : null;
    const shape = [1, 1, crop.height, crop.width];
    const detector = this.opts.detector ?? null;
    const { fused, total, heads } = noGrad(() =>
      tidy(() => {
        const [irT, visT, maskT] = [ir, vis, mask].map((a) => Tensor.fromArray(a, shape));
        const salT = saliency ? Tensor.fromArray(saliency, shape) : null;
        const det = detector ? detector.forward(irT, visT) : null;
        const mode = this.opts.attention;
        const att = mode === 'detector' && det ? fusionAttention(det, crop.height, crop.width) : mode === 'boxes' && s.mask ? maskT : mode === 'saliency' ? salT : null;
        const out = this.net.forward(irT, visT, att);
        const lossM = lossMask({ attention: mode, foreground: this.opts.foreground ?? 'attention' }, maskT, salT);
        const total = fusionLosses(this.net.config, out.fused, visT, irT, lossM, out.auxLoss).total;
        return { fused: out.fused, total, heads: det ? [...det.heads.vis, ...det.heads.ir] : null };
      }),
    );
    const decoded = heads && detector
      ? decodeDetections(heads, { classNames: detector.config.classes, imageWidth: crop.width, imageHeight: crop.height, scoreThreshold: 0.05 })
      : null;
    const [fusedData, loss, boxes] = await Promise.all([fused.data(), total.item(), decoded]);
    for (const t of [fused, total, ...(heads ?? []).flatMap((h) => [h.heat, h.size, h.offset])]) t.dispose();
    const [w, h] = [crop.width, crop.height];
    const detected = boxes ? { detections: boxes[0], truths: cropBoxes(s.boxes ?? [], crop.x0, crop.y0, w, h) } : null;
    return { loss, fused: gray8(fusedData, w, h), ir: gray8(ir, w, h), vis: gray8(vis, w, h), detected };
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
