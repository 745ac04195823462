/** MoE-Fusion's training objective (docs/moe-fusion.md §5), from the fused image, the sources and the box mask. */
import type { Tensor } from '../tensor/tensor.ts';
import { gradientLoss, pixelLoss, scale, add } from '../ops/index.ts';
import type { FusionConfig } from './config.ts';

export interface FusionLosses {
  grad: Tensor;
  pixel: Tensor;
  aux: Tensor;
  total: Tensor;
}

/** mask: (B,1,H,W), 1 inside ground-truth boxes (all zeros when there are none). */
export function fusionLosses(cfg: FusionConfig, fused: Tensor, vis: Tensor, ir: Tensor, mask: Tensor, aux: Tensor): FusionLosses {
  const grad = gradientLoss(fused, vis, ir);
  const pixel = pixelLoss(fused, vis, ir, mask);
  const total = weightedSum([
    [grad, cfg.gradWeight],
    [pixel, cfg.pixelWeight],
    [aux, 1],
  ]);
  return { grad, pixel, aux, total };
}

/** Σ weight·term. */
export function weightedSum(terms: Array<[Tensor, number]>): Tensor {
  let total: Tensor | null = null;
  for (const [t, w] of terms) {
    const s = w === 1 ? t : scale(t, w);
    total = total ? add(total, s) : s;
  }
  if (!total) throw new Error('weightedSum of nothing');
  return total;
}
