/**
 * Validation during training: each held-out pair is fused with the current weights in inference mode (whole
 * image, or its centre crop of at most 256×256 so that a pass stays cheap on software adapters), quantised to 8 bit
 * as a saved result would be, and scored with a few `tang` protocol metrics; the validation loss comes from the
 * same forward pass. Scores are averaged over the pairs.
 */
import { noGrad, tidy } from '../graph/engine.ts';
import { Tensor } from '../graph/tensor.ts';
import type { FusionNet } from '../model/fusion-net.ts';
import { fusionLosses } from '../model/losses.ts';
import type { SampleSource, TrainingSample } from '../model/trainer.ts';
import { to8bit } from '../io/color.ts';
import type { Image } from '../io/image.ts';
import { getProtocol, type MetricName } from '../metrics/protocols.ts';

export const VALIDATION_METRICS = ['EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'VIF', 'Qabf'] as const satisfies readonly MetricName[];
export type ValidationScores = Record<'loss' | (typeof VALIDATION_METRICS)[number], number>;

/** Largest side of the validated region. */
export const VALIDATION_MAX_SIDE = 256;

interface Crop {
  width: number;
  height: number;
  take(plane: Float32Array): Float32Array;
}

/** The centre crop of a sample, no larger than maxSide in either direction. */
function centreCrop(s: TrainingSample, maxSide: number): Crop {
  const [height, width] = [Math.min(maxSide, s.height), Math.min(maxSide, s.width)];
  const [y0, x0] = [Math.floor((s.height - height) / 2), Math.floor((s.width - width) / 2)];
  return {
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
  attention: 'boxes' | 'none';
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
    for (let i = 0; i < this.source.count; i++) {
      const { loss, fused, ir, vis } = await this.fuse(await this.source.get(i));
      sums.loss += loss;
      for (const m of VALIDATION_METRICS) sums[m] += this.score(m, fused, ir, vis);
    }
    const n = Math.max(1, this.source.count);
    return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])) as ValidationScores;
  }

  /** The fused centre crop (8-bit, as saved) with its sources, and the loss of the same forward pass. */
  private async fuse(s: TrainingSample): Promise<{ loss: number; fused: Image; ir: Image; vis: Image }> {
    const crop = centreCrop(s, this.opts.maxSide ?? VALIDATION_MAX_SIDE);
    const [ir, vis] = [crop.take(s.ir), crop.take(s.vis)];
    const mask = s.mask ? crop.take(s.mask) : new Float32Array(crop.width * crop.height);
    const shape = [1, 1, crop.height, crop.width];
    const { fused, total } = noGrad(() =>
      tidy(() => {
        const [irT, visT, maskT] = [ir, vis, mask].map((a) => Tensor.fromArray(a, shape));
        const out = this.net.forward(irT, visT, this.opts.attention === 'boxes' && s.mask ? maskT : null);
        return { fused: out.fused, total: fusionLosses(this.net.config, out.fused, visT, irT, maskT, out.auxLoss).total };
      }),
    );
    const [fusedData, loss] = await Promise.all([fused.data(), total.item()]);
    fused.dispose();
    total.dispose();
    const [w, h] = [crop.width, crop.height];
    return { loss, fused: gray8(fusedData, w, h), ir: gray8(ir, w, h), vis: gray8(vis, w, h) };
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
