/**
 * The MoE-Fusion fusion network (docs/moe-fusion.md §2-4): two dense encoders, foreground and background mixtures
 * of local experts, and the mixture of global experts that decodes the fused image.
 * Any image size runs with one set of weights: the gates always see the configured grid (the 640×480 one by default).
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { NoisyTopKResult } from '../ops/index.ts';
import { engine, tidy } from '../tensor/engine.ts';
import { mul, sub, concat, add, full } from '../ops/index.ts';
import { DEFAULT_CONFIG, type FusionConfig } from './config.ts';
import { encode } from './encoder.ts';
import { mixture } from './mixture.ts';
import { LOCAL_EXPERT_CONVS, GLOBAL_EXPERT_CONVS, type ParamSet } from './parameters.ts';

export interface ForwardOptions {
  /** Training mode: noisy gates and their load terms. */
  train?: boolean;
  /** N(0,1) noise per gate, shape (B, experts), drawn by the caller: required in training, unused otherwise. */
  noise?: Partial<Record<'fg' | 'bg' | 'global', Tensor>>;
}

export interface ForwardResult {
  /** I_F, (B,1,H,W), unbounded (clamp to [0,1] when saving). */
  fused: Tensor;
  gates: { fg: NoisyTopKResult; bg: NoisyTopKResult; global: NoisyTopKResult };
  /** Σ of the three auxiliary load-balancing losses (coefficients applied). */
  auxLoss: Tensor;
}

export class FusionNet {
  constructor(
    readonly params: ParamSet,
    readonly config: FusionConfig = DEFAULT_CONFIG,
  ) {}

  /** ir, vis: (B,1,H,W) in [0,1]; att: (B,1,H,W) attention map (foreground weight), 0.5 everywhere when absent. */
  forward(ir: Tensor, vis: Tensor, att?: Tensor | null, opts: ForwardOptions = {}): ForwardResult {
    const cfg = this.config;
    const train = opts.train ?? false;
    if (ir.rank !== 4 || ir.shape[1] !== 1) throw new Error(`infrared input must be (B,1,H,W), got [${ir.shape}]`);
    if (ir.shape.join() !== vis.shape.join()) throw new Error(`infrared [${ir.shape}] and visible [${vis.shape}] differ in shape`);
    const attention = att ?? full(ir.shape, 0.5);
    if (attention.shape.join() !== ir.shape.join()) throw new Error(`attention map [${attention.shape}] must be [${ir.shape}]`);

    const rt = engine().rt;
    // The encoders and local mixtures in a scope of their own, so that all they made but x_f and the gates is
    // released before the global experts (the peak of a forward pass).
    const { xf, fg, bg } = tidy(() => {
      rt.timestamp('encoders');
      const v = encode(this.params, 'r', vis);
      const i = encode(this.params, 'i', ir);
      const background = sub(full([1], 1), attention);

      const local = (name: 'encoder.moe_fg' | 'encoder.moe_bg', weight: Tensor, coef: number, noise?: Tensor) => {
        const vw = mul(v.enc, weight);
        const iw = mul(i.enc, weight);
        const gateInput = concat([vw, iw], 1);
        const stacked = concat([vw, iw], 0); // experts 0..E/2-1 read visible, the rest infrared
        return mixture(this.params, gateInput, stacked, {
          name,
          convs: LOCAL_EXPERT_CONVS,
          k: cfg.k,
          gateGrid: cfg.localGate,
          lossCoef: coef,
          train,
          noise,
          groups: 2,
        });
      };
      const fg = local('encoder.moe_fg', attention, cfg.auxCoef.fg, opts.noise?.fg);
      const bg = local('encoder.moe_bg', background, cfg.auxCoef.bg, opts.noise?.bg);

      return { xf: concat([v.dense, i.dense, fg.y, bg.y], 1), fg: fg.gate, bg: bg.gate };
    });
    const global = mixture(this.params, xf, xf, {
      name: 'DecoderMoE',
      convs: GLOBAL_EXPERT_CONVS,
      k: cfg.k,
      gateGrid: cfg.globalGate,
      lossCoef: cfg.auxCoef.global,
      train,
      noise: opts.noise?.global,
      groups: 1,
    });
    xf.dispose();
    rt.timestamp('forward end');
    const auxLoss = add(add(fg.auxLoss, bg.auxLoss), global.gate.auxLoss);
    return { fused: global.y, gates: { fg, bg, global: global.gate }, auxLoss };
  }
}
