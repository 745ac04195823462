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
import { Rng } from '../../util/rng.ts';
import { LEVEL_STRIDES, MODALITIES, type DetectorConfig, type Modality } from './config.ts';
import { Model, batchNorm, conv, fanInUniform, initParameters, type Bound } from '../parameters.ts';
import type { HeadLevel } from './decode.ts';

/** Heat-map logits start at the focal-loss prior p = 0.1 (CenterNet), so early training is not swamped by negatives. */
const HEAT_PRIOR_BIAS = -Math.log((1 - 0.1) / 0.1);

/** One modality's backbone (strides 2, 4, 8, 16), FPN, spatial attention and head. */
function modalityLayout(cfg: DetectorConfig) {
  const [c1, c2, c3, c4] = cfg.backbone;
  const D = cfg.fpn;
  const C = cfg.classes.length;
  const headInit = fanInUniform(cfg.head);
  return {
    backbone: { conv1: conv(c1, 1, 3), conv2: conv(c2, c1, 3), conv3: conv(c2, c2, 3), conv4: conv(c3, c2, 3), conv5: conv(c3, c3, 3), conv6: conv(c4, c3, 3) },
    fpn: { lateral2: conv(D, c2, 1), lateral3: conv(D, c3, 1), lateral4: conv(D, c4, 1), smooth2: conv(D, D, 3), smooth3: conv(D, D, 3), smooth4: conv(D, D, 3) },
    attention: { conv1: conv(D / 2, D, 1), conv2: conv(1, D / 2, 1), bn1: batchNorm(D / 2), bn2: batchNorm(1) },
    head: {
      conv: conv(cfg.head, D, 3),
      // Channels: classes' heat logits, then log-size (w, h), then centre offset (x, y).
      out: conv(C + 4, cfg.head, 1, (n, rng) => headInit(n, rng).fill(HEAT_PRIOR_BIAS, 0, C)),
    },
  };
}

/** The detectors' tensors: `detector.<vis|ir>.…` per modality and the shared `detector.interaction.…`. */
export function detectorLayout(cfg: DetectorConfig) {
  return { detector: { vis: modalityLayout(cfg), ir: modalityLayout(cfg), interaction: { conv: conv(cfg.fpn, 2 * cfg.fpn, 1) } } };
}

export type DetectorLayout = ReturnType<typeof detectorLayout>;
type ConvParams = Bound<ReturnType<typeof conv>>;
type NormParams = Bound<ReturnType<typeof batchNorm>>;

export interface DetectorOutput {
  /** Head outputs per modality and level (P2, P3, P4). */
  heads: Record<Modality, HeadLevel[]>;
  /** Spatial attention per modality and level, (B,1,h,w) in (0,1). */
  attention: Record<Modality, Tensor[]>;
}

const applyConv = (x: Tensor, c: ConvParams, relu = false) => conv2d(x, c.weight, c.bias, { relu });

export class Detector extends Model<DetectorLayout, DetectorConfig> {
  /** New detectors: convolutions as PyTorch initialises them, batch norms γ = 1, β = 0, running N(0, 1). */
  static init(config: DetectorConfig, seed = 0): Detector {
    return new Detector(config, initParameters(detectorLayout(config), new Rng(((seed + 7919) * 2654435761) >>> 0 || 1)));
  }

  private norm(x: Tensor, bn: NormParams, training: boolean): Tensor {
    return batchNorm2d(x, bn.weight, bn.bias, { mean: bn.running_mean, var: bn.running_var }, { training });
  }

  /** Backbone and FPN of one modality: [P2, P3, P4]. */
  private pyramid(m: Modality, img: Tensor): Tensor[] {
    const { backbone: b, fpn: f } = this.params.tree.detector[m];
    const s2 = avgPool2d(applyConv(img, b.conv1, true), 2);
    const c2 = avgPool2d(applyConv(applyConv(s2, b.conv2, true), b.conv3, true), 2);
    const c3 = avgPool2d(applyConv(applyConv(c2, b.conv4, true), b.conv5, true), 2);
    const c4 = avgPool2d(applyConv(c3, b.conv6, true), 2);
    const l4 = applyConv(c4, f.lateral4);
    const l3 = add(applyConv(c3, f.lateral3), resizeBilinear(l4, c3.shape[2], c3.shape[3]));
    const l2 = add(applyConv(c2, f.lateral2), resizeBilinear(l3, c2.shape[2], c2.shape[3]));
    return [applyConv(l2, f.smooth2), applyConv(l3, f.smooth3), applyConv(l4, f.smooth4)];
  }

  private spatialAttention(m: Modality, f: Tensor, training: boolean): Tensor {
    const a = this.params.tree.detector[m].attention;
    const hidden = this.norm(applyConv(f, a.conv1), a.bn1, training);
    return sigmoid(this.norm(applyConv(relu(hidden), a.conv2), a.bn2, training));
  }

  private head(m: Modality, g: Tensor, stride: number): HeadLevel {
    const C = this.config.classes.length;
    const h = this.params.tree.detector[m].head;
    const out = applyConv(applyConv(g, h.conv, true), h.out);
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
      const c = applyConv(concat([pyramids.vis[l], pyramids.ir[l]], 1), this.params.tree.detector.interaction.conv, true);
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
