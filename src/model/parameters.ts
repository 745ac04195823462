/**
 * The fusion network's parameters under the reference's state-dict names (docs/moe-fusion.md §9), and their
 * default initialisation. Expert convolutions are stored stacked per layer, (E, out, in, 3, 3), so that routed
 * convolutions run only the chosen experts; the names below map each expert's slice.
 */
import { Tensor, parameter } from '../tensor/tensor.ts';
import { Rng } from '../util/rng.ts';
import { type FusionConfig, localGateInputs, globalGateInputs } from './config.ts';

export interface ConvSpec {
  name: string;
  out: number;
  in: number;
  k: number;
}

/** Encoder convs per stream (suffix _r visible, _i infrared). */
export const ENCODER_CONVS: ConvSpec[] = [
  { name: 'encoder.Conv1', out: 16, in: 1, k: 3 },
  { name: 'encoder.DenseConv1', out: 16, in: 16, k: 3 },
  { name: 'encoder.DenseConv2', out: 16, in: 32, k: 3 },
  { name: 'encoder.DenseConv3', out: 16, in: 48, k: 3 },
];

export const LOCAL_EXPERT_CONVS: ConvSpec[] = [
  { name: 'conv1', out: 8, in: 16, k: 3 },
  { name: 'conv2', out: 16, in: 8, k: 3 },
];

export const GLOBAL_EXPERT_CONVS: ConvSpec[] = [
  { name: 'decoder_Conv2', out: 64, in: 160, k: 3 },
  { name: 'decoder_Conv3', out: 32, in: 64, k: 3 },
  { name: 'decoder_Conv4', out: 16, in: 32, k: 3 },
  { name: 'decoder_Conv5', out: 1, in: 16, k: 3 },
];

export const MIXTURES = ['encoder.moe_fg', 'encoder.moe_bg', 'DecoderMoE'] as const;
export type MixtureName = (typeof MIXTURES)[number];

/** A reference state-dict entry and where it lives in the engine's parameters. */
export interface NamedSlot {
  /** State-dict name, e.g. `encoder.moe_fg.experts.2.conv1.weight`. */
  name: string;
  shape: number[];
  /** Engine parameter holding it, and the expert index within a stacked parameter (or -1). */
  param: string;
  expert: number;
}

/** The engine's parameters: plain ones keep their state-dict names; stacked expert layers are `<mixture>.experts.<conv>.weight`. */
export type ParamSet = Map<string, Tensor>;

export function stateDictSlots(cfg: FusionConfig): NamedSlot[] {
  const slots: NamedSlot[] = [];
  const plain = (name: string, shape: number[]) => slots.push({ name, shape, param: name, expert: -1 });
  for (const c of ENCODER_CONVS)
    for (const s of ['r', 'i']) {
      plain(`${c.name}.conv_${s}.weight`, [c.out, c.in, c.k, c.k]);
      plain(`${c.name}.conv_${s}.bias`, [c.out]);
    }
  const mixtures: Array<[MixtureName, ConvSpec[], number]> = [
    ['encoder.moe_fg', LOCAL_EXPERT_CONVS, localGateInputs(cfg)],
    ['encoder.moe_bg', LOCAL_EXPERT_CONVS, localGateInputs(cfg)],
    ['DecoderMoE', GLOBAL_EXPERT_CONVS, globalGateInputs(cfg)],
  ];
  for (const [m, convs, d] of mixtures) {
    plain(`${m}.w_gate`, [d, cfg.experts]);
    plain(`${m}.w_noise`, [d, cfg.experts]);
    for (let e = 0; e < cfg.experts; e++)
      for (const c of convs) {
        slots.push({ name: `${m}.experts.${e}.${c.name}.weight`, shape: [c.out, c.in, c.k, c.k], param: `${m}.experts.${c.name}.weight`, expert: e });
        slots.push({ name: `${m}.experts.${e}.${c.name}.bias`, shape: [c.out], param: `${m}.experts.${c.name}.bias`, expert: e });
      }
  }
  return slots;
}

/** Buffers of the reference's state dict that are not parameters (the standard normal of the load term). */
export const BUFFERS: Record<string, number[]> = Object.fromEntries(
  MIXTURES.flatMap((m) => [
    [`${m}.mean`, [0]],
    [`${m}.std`, [1]],
  ]),
);

/** Shapes of the engine's parameters. */
export function paramShapes(cfg: FusionConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const s of stateDictSlots(cfg))
    shapes.set(s.param, s.expert < 0 ? s.shape : [cfg.experts, ...s.shape]);
  return shapes;
}

/**
 * PyTorch's default initialisation: conv weights and biases U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a=√5);
 * gate matrices zero, as in the reference.
 */
export function initParameters(cfg: FusionConfig, seed = 0): ParamSet {
  const params: ParamSet = new Map();
  const rng = new Rng((seed * 2654435761) >>> 0 || 1);
  for (const [name, shape] of paramShapes(cfg)) {
    const n = shape.reduce((a, d) => a * d, 1);
    let data: Float32Array;
    if (name.endsWith('w_gate') || name.endsWith('w_noise')) data = new Float32Array(n);
    else {
      const spec = convSpecFor(name);
      const fanIn = spec.in * spec.k * spec.k;
      const bound = 1 / Math.sqrt(fanIn);
      data = rng.uniform(n, -bound, bound);
    }
    params.set(name, parameter(Tensor.fromArray(data, shape), name));
  }
  return params;
}

function convSpecFor(paramName: string): ConvSpec {
  const all = [...ENCODER_CONVS, ...LOCAL_EXPERT_CONVS, ...GLOBAL_EXPERT_CONVS];
  const base = paramName.replace(/\.(weight|bias)$/, '').replace(/\.conv_[ri]$/, '');
  const last = base.split('.').pop()!;
  const spec = all.find((c) => c.name === base || c.name === last);
  if (!spec) throw new Error(`no conv spec for parameter ${paramName}`);
  return spec;
}

export function disposeParameters(params: ParamSet): void {
  for (const t of params.values()) t.dispose();
  params.clear();
}
