/**
 * The detectors' parameters and batch-norm buffers, by name (`detector.<vis|ir>.…` per modality, and the shared
 * `detector.interaction.…`), with PyTorch's default initialisation.
 */
import { Tensor, parameter } from '../../tensor/tensor.ts';
import { Rng } from '../../util/rng.ts';
import { keep } from '../../tensor/engine.ts';
import type { DetectorConfig } from './config.ts';

export const MODALITIES = ['vis', 'ir'] as const;
export type Modality = (typeof MODALITIES)[number];

interface ConvSpec {
  name: string;
  out: number;
  in: number;
  k: number;
  /** Initial bias (default: PyTorch's uniform). */
  bias?: number;
}

/** Heat-map logits start at the focal-loss prior p = 0.1 (CenterNet), so early training is not swamped by negatives. */
const HEAT_PRIOR_BIAS = -Math.log((1 - 0.1) / 0.1);

function modalityConvs(cfg: DetectorConfig): ConvSpec[] {
  const [c1, c2, c3, c4] = cfg.backbone;
  const D = cfg.fpn;
  return [
    { name: 'backbone.conv1', out: c1, in: 1, k: 3 },
    { name: 'backbone.conv2', out: c2, in: c1, k: 3 },
    { name: 'backbone.conv3', out: c2, in: c2, k: 3 },
    { name: 'backbone.conv4', out: c3, in: c2, k: 3 },
    { name: 'backbone.conv5', out: c3, in: c3, k: 3 },
    { name: 'backbone.conv6', out: c4, in: c3, k: 3 },
    { name: 'fpn.lateral2', out: D, in: c2, k: 1 },
    { name: 'fpn.lateral3', out: D, in: c3, k: 1 },
    { name: 'fpn.lateral4', out: D, in: c4, k: 1 },
    { name: 'fpn.smooth2', out: D, in: D, k: 3 },
    { name: 'fpn.smooth3', out: D, in: D, k: 3 },
    { name: 'fpn.smooth4', out: D, in: D, k: 3 },
    { name: 'attention.conv1', out: D / 2, in: D, k: 1 },
    { name: 'attention.conv2', out: 1, in: D / 2, k: 1 },
    { name: 'head.conv', out: cfg.head, in: D, k: 3 },
    // Channels: classes' heat logits, then log-size (w, h), then centre offset (x, y).
    { name: 'head.out', out: cfg.classes.length + 4, in: cfg.head, k: 1 },
  ];
}

/** Batch norms of the spatial attention (channel counts), per modality. */
function modalityNorms(cfg: DetectorConfig): Array<[string, number]> {
  return [
    ['attention.bn1', cfg.fpn / 2],
    ['attention.bn2', 1],
  ];
}

function allConvs(cfg: DetectorConfig): ConvSpec[] {
  const convs = MODALITIES.flatMap((m) => modalityConvs(cfg).map((c) => ({ ...c, name: `detector.${m}.${c.name}` })));
  convs.push({ name: 'detector.interaction.conv', out: cfg.fpn, in: 2 * cfg.fpn, k: 1 });
  return convs;
}

/** name → shape of every learnable tensor. */
export function detectorParamShapes(cfg: DetectorConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const c of allConvs(cfg)) {
    shapes.set(`${c.name}.weight`, [c.out, c.in, c.k, c.k]);
    shapes.set(`${c.name}.bias`, [c.out]);
  }
  for (const m of MODALITIES)
    for (const [bn, ch] of modalityNorms(cfg)) {
      shapes.set(`detector.${m}.${bn}.weight`, [ch]);
      shapes.set(`detector.${m}.${bn}.bias`, [ch]);
    }
  return shapes;
}

/** name → shape of the batch norms' running statistics (state, not learnt by gradient). */
export function detectorBufferShapes(cfg: DetectorConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const m of MODALITIES)
    for (const [bn, ch] of modalityNorms(cfg)) {
      shapes.set(`detector.${m}.${bn}.running_mean`, [ch]);
      shapes.set(`detector.${m}.${bn}.running_var`, [ch]);
    }
  return shapes;
}

export interface DetectorTensors {
  params: Map<string, Tensor>;
  buffers: Map<string, Tensor>;
}

/** Conv weights and biases U(−1/√fan_in, 1/√fan_in) as PyTorch; batch norms γ = 1, β = 0, running N(0, 1). */
export function initDetectorTensors(cfg: DetectorConfig, seed = 0): DetectorTensors {
  const rng = new Rng(((seed + 7919) * 2654435761) >>> 0 || 1);
  const params = new Map<string, Tensor>();
  for (const c of allConvs(cfg)) {
    const bound = 1 / Math.sqrt(c.in * c.k * c.k);
    const w = rng.uniform(c.out * c.in * c.k * c.k, -bound, bound);
    const b = rng.uniform(c.out, -bound, bound);
    if (c.name.endsWith('head.out')) b.fill(HEAT_PRIOR_BIAS, 0, cfg.classes.length);
    params.set(`${c.name}.weight`, parameter(Tensor.fromArray(w, [c.out, c.in, c.k, c.k]), `${c.name}.weight`));
    params.set(`${c.name}.bias`, parameter(Tensor.fromArray(b, [c.out]), `${c.name}.bias`));
  }
  for (const m of MODALITIES)
    for (const [bn, ch] of modalityNorms(cfg)) {
      const name = `detector.${m}.${bn}`;
      params.set(`${name}.weight`, parameter(Tensor.fromArray(new Float32Array(ch).fill(1), [ch]), `${name}.weight`));
      params.set(`${name}.bias`, parameter(Tensor.fromArray(new Float32Array(ch), [ch]), `${name}.bias`));
    }
  const buffers = new Map<string, Tensor>();
  for (const [name, shape] of detectorBufferShapes(cfg))
    buffers.set(name, keep(Tensor.fromArray(new Float32Array(shape[0]).fill(name.endsWith('running_var') ? 1 : 0), shape)));
  return { params, buffers };
}
