/**
 * The MoE-Fusion fusion network (docs/moe-fusion.md §2-4): two dense encoders, foreground and background mixtures
 * of local experts, and the mixture of global experts that decodes the fused image.
 * Any image size runs with one set of weights: the gates always see the configured grid (the 640×480 one by default).
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { NoisyTopKResult } from '../ops/index.ts';
import { engine, tidy } from '../tensor/engine.ts';
import { mul, sub, concat, add, full } from '../ops/index.ts';
import { Rng } from '../util/rng.ts';
import { DEFAULT_CONFIG, type FusionConfig } from './config.ts';
import { encode, encoderLayout } from './encoder.ts';
import { mixture, mixtureLayout, mixtureStages, type MixtureParams } from './mixture.ts';
import { Model, conv, initParameters, type Bound } from './parameters.ts';

/** Channels the local gates see: cat(v, i) of the 16-channel encodings. */
export const LOCAL_CHANNELS = 32;
/** Channels of x_f, what the global gate and experts see: cat(x_dense_vis, x_dense_ir, y_fg, y_bg). */
export const GLOBAL_CHANNELS = 160;

/** The network's tensors under the reference's state-dict names (docs/moe-fusion.md §9). */
export function fusionLayout(cfg: FusionConfig) {
  const local = () =>
    mixtureLayout(LOCAL_CHANNELS * cfg.localGate[0] * cfg.localGate[1], cfg.experts, { conv1: conv(8, LOCAL_CHANNELS / 2, 3), conv2: conv(16, 8, 3) });
  return {
    encoder: { ...encoderLayout(), moe_fg: local(), moe_bg: local() },
    DecoderMoE: mixtureLayout(GLOBAL_CHANNELS * cfg.globalGate[0] * cfg.globalGate[1], cfg.experts, {
      decoder_Conv2: conv(64, GLOBAL_CHANNELS, 3),
      decoder_Conv3: conv(32, 64, 3),
      decoder_Conv4: conv(16, 32, 3),
      decoder_Conv5: conv(1, 16, 3),
    }),
  };
}

export type FusionLayout = ReturnType<typeof fusionLayout>;
export type FusionParams<T = Tensor> = Bound<FusionLayout, T>;

/** The mixtures by their gates' names in results, with the state-dict names that label their stages. */
const MIXTURES = { fg: 'encoder.moe_fg', bg: 'encoder.moe_bg', global: 'DecoderMoE' } as const;
type Gate = keyof typeof MIXTURES;

/** Every stage forward() marks (rt.timestamp), in order: what progress displays count. */
export const FORWARD_STAGES: readonly string[] = ['encoders', ...Object.values(MIXTURES).flatMap(mixtureStages), 'forward end'];

export interface ForwardOptions {
  /** Training mode: noisy gates and their load terms. */
  train?: boolean;
  /** N(0,1) noise per gate, shape (B, experts), drawn by the caller: required in training, unused otherwise. */
  noise?: Partial<Record<Gate, Tensor>>;
}

export interface ForwardResult {
  /** I_F, (B,1,H,W), unbounded (clamp to [0,1] when saving). */
  fused: Tensor;
  gates: Record<Gate, NoisyTopKResult>;
  /** Σ of the three auxiliary load-balancing losses (coefficients applied). */
  auxLoss: Tensor;
}

export class FusionNet extends Model<FusionLayout, FusionConfig> {
  /** A new network with PyTorch's default initialisation (gate matrices zero, as in the reference). */
  static init(config: FusionConfig = DEFAULT_CONFIG, seed = 0): FusionNet {
    return new FusionNet(config, initParameters(fusionLayout(config), new Rng((seed * 2654435761) >>> 0 || 1)));
  }

  /** The three mixtures' tensors (foreground, background, global). */
  get mixtures(): Record<Gate, MixtureParams> {
    const p = this.params.tree;
    return { fg: p.encoder.moe_fg, bg: p.encoder.moe_bg, global: p.DecoderMoE };
  }

  /** ir, vis: (B,1,H,W) in [0,1]; att: (B,1,H,W) attention map (foreground weight), 0.5 everywhere when absent. */
  forward(ir: Tensor, vis: Tensor, att?: Tensor | null, opts: ForwardOptions = {}): ForwardResult {
    const cfg = this.config;
    const p = this.params.tree;
    const train = opts.train ?? false;
    if (ir.rank !== 4 || ir.shape[1] !== 1) throw new Error(`infrared input must be (B,1,H,W), got [${ir.shape}]`);
    if (ir.shape.join() !== vis.shape.join()) throw new Error(`infrared [${ir.shape}] and visible [${vis.shape}] differ in shape`);
    const attention = att ?? full(ir.shape, 0.5);
    if (attention.shape.join() !== ir.shape.join()) throw new Error(`attention map [${attention.shape}] must be [${ir.shape}]`);

    const rt = engine().rt;
    const run = (gate: Gate, gateInput: Tensor, stacked: Tensor, grid: [number, number], groups: number) =>
      mixture(this.mixtures[gate], gateInput, stacked, {
        label: MIXTURES[gate],
        k: cfg.k,
        gateGrid: grid,
        lossCoef: cfg.auxCoef[gate],
        train,
        noise: opts.noise?.[gate],
        groups,
      });
    // The encoders and local mixtures in a scope of their own, so that all they made but x_f and the gates is
    // released before the global experts (the peak of a forward pass).
    const { xf, fg, bg } = tidy(() => {
      rt.timestamp(FORWARD_STAGES[0]);
      const v = encode(p.encoder, 'r', vis);
      const i = encode(p.encoder, 'i', ir);
      const background = sub(full([1], 1), attention);
      const local = (gate: 'fg' | 'bg', weight: Tensor) => {
        const vw = mul(v.enc, weight);
        const iw = mul(i.enc, weight);
        // Experts 0..E/2-1 read visible, the rest infrared.
        return run(gate, concat([vw, iw], 1), concat([vw, iw], 0), cfg.localGate, 2);
      };
      const fg = local('fg', attention);
      const bg = local('bg', background);
      return { xf: concat([v.dense, i.dense, fg.y, bg.y], 1), fg: fg.gate, bg: bg.gate };
    });
    const global = run('global', xf, xf, cfg.globalGate, 1);
    xf.dispose();
    rt.timestamp(FORWARD_STAGES[FORWARD_STAGES.length - 1]);
    const auxLoss = add(add(fg.auxLoss, bg.auxLoss), global.gate.auxLoss);
    return { fused: global.y, gates: { fg, bg, global: global.gate }, auxLoss };
  }
}
