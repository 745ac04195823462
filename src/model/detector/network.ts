/**
 * The two auxiliary detectors of MoE-Fusion (docs/moe-fusion.md §1) on the engine: per modality a compact backbone
 * and FPN (P2, P3, P4 at strides 4, 8, 16); on every level the shared cross-modal interaction
 * `c = ReLU(conv1x1(cat(P_vis, P_ir)))`, `f_m = P_m + c`; per modality the spatial attention
 * `att = σ(BN(conv1x1(ReLU(BN(conv1x1(f))))))` (weights shared across levels); and a CenterNet-style head per
 * modality (shared across levels) that sees `f + f·att`. The fusion network's Att is the elementwise max of the two
 * P2 attention maps, bilinearly upsampled to the image (align_corners) and detached.
 */
import type { Tensor } from '../../tensor/tensor.ts';
import { noGrad } from '../../tensor/engine.ts';
import { add, addScalar, avgPool2d, batchNorm2d, concat, conv2d, maximum, mul, relu, resizeBilinear, sigmoid, slice } from '../../ops/index.ts';
import { LEVEL_STRIDES, type DetectorConfig } from './config.ts';
import { MODALITIES, type DetectorTensors, type Modality } from './parameters.ts';
import type { HeadLevel } from './decode.ts';

export interface DetectorOutput {
  /** Head outputs per modality and level (P2, P3, P4). */
  heads: Record<Modality, HeadLevel[]>;
  /** Spatial attention per modality and level, (B,1,h,w) in (0,1). */
  attention: Record<Modality, Tensor[]>;
}

export class Detector {
  constructor(
    readonly tensors: DetectorTensors,
    readonly config: DetectorConfig,
  ) {}

  get params(): Map<string, Tensor> {
    return this.tensors.params;
  }

  private p(name: string): Tensor {
    const t = this.tensors.params.get(name);
    if (!t) throw new Error(`detector parameter ${name} is missing`);
    return t;
  }

  private conv(x: Tensor, name: string, relu = false): Tensor {
    return conv2d(x, this.p(`${name}.weight`), this.p(`${name}.bias`), { relu });
  }

  private norm(x: Tensor, name: string, training: boolean): Tensor {
    const running = { mean: this.tensors.buffers.get(`${name}.running_mean`)!, var: this.tensors.buffers.get(`${name}.running_var`)! };
    return batchNorm2d(x, this.p(`${name}.weight`), this.p(`${name}.bias`), running, { training });
  }

  /** Backbone and FPN of one modality: [P2, P3, P4]. */
  private pyramid(m: Modality, img: Tensor): Tensor[] {
    const b = `detector.${m}.backbone`;
    const s2 = avgPool2d(this.conv(img, `${b}.conv1`, true), 2);
    const c2 = avgPool2d(this.conv(this.conv(s2, `${b}.conv2`, true), `${b}.conv3`, true), 2);
    const c3 = avgPool2d(this.conv(this.conv(c2, `${b}.conv4`, true), `${b}.conv5`, true), 2);
    const c4 = avgPool2d(this.conv(c3, `${b}.conv6`, true), 2);
    const f = `detector.${m}.fpn`;
    const l4 = this.conv(c4, `${f}.lateral4`);
    const l3 = add(this.conv(c3, `${f}.lateral3`), resizeBilinear(l4, c3.shape[2], c3.shape[3]));
    const l2 = add(this.conv(c2, `${f}.lateral2`), resizeBilinear(l3, c2.shape[2], c2.shape[3]));
    return [this.conv(l2, `${f}.smooth2`), this.conv(l3, `${f}.smooth3`), this.conv(l4, `${f}.smooth4`)];
  }

  private spatialAttention(m: Modality, f: Tensor, training: boolean): Tensor {
    const a = `detector.${m}.attention`;
    const hidden = this.norm(this.conv(f, `${a}.conv1`), `${a}.bn1`, training);
    return sigmoid(this.norm(this.conv(relu(hidden), `${a}.conv2`), `${a}.bn2`, training));
  }

  private head(m: Modality, g: Tensor, stride: number): HeadLevel {
    const C = this.config.classes.length;
    const out = this.conv(this.conv(g, `detector.${m}.head.conv`, true), `detector.${m}.head.out`);
    return { heat: slice(out, 1, 0, C), size: slice(out, 1, C, C + 2), offset: slice(out, 1, C + 2, C + 4), stride };
  }

  /** ir, vis: (B,1,H,W) in [0,1], H and W at least 16. `training` uses batch statistics in the batch norms. */
  forward(ir: Tensor, vis: Tensor, opts: { training?: boolean } = {}): DetectorOutput {
    const training = opts.training ?? false;
    const [H, W] = [ir.shape[2], ir.shape[3]];
    if (H < 16 || W < 16) throw new Error(`the detector needs images of at least 16×16 pixels, got ${W}×${H}`);
    const pyramids = { vis: this.pyramid('vis', vis), ir: this.pyramid('ir', ir) };
    const heads: DetectorOutput['heads'] = { vis: [], ir: [] };
    const attention: DetectorOutput['attention'] = { vis: [], ir: [] };
    LEVEL_STRIDES.forEach((stride, l) => {
      const c = this.conv(concat([pyramids.vis[l], pyramids.ir[l]], 1), 'detector.interaction.conv', true);
      for (const m of MODALITIES) {
        const f = add(pyramids[m][l], c);
        const att = this.spatialAttention(m, f, training);
        attention[m].push(att);
        heads[m].push(this.head(m, mul(f, addScalar(att, 1)), stride));
      }
    });
    return { heads, attention };
  }
}

/** Att for the fusion network: max of the two stride-4 attention maps, upsampled to H×W, detached. */
export function fusionAttention(out: DetectorOutput, H: number, W: number): Tensor {
  return noGrad(() => resizeBilinear(maximum(out.attention.vis[0], out.attention.ir[0]), H, W));
}
