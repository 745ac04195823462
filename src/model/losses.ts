/**
 * MoE-Fusion's training objective (docs/moe-fusion.md §5), from the fused image, the sources and the box mask: the
 * Sobel gradient loss and the object-aware pixel loss, built on the engine's generic L1 losses.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { l1Loss, maskedL1Loss, maximum, sobelGradient, scale, add, addScalar, neg } from '../ops/index.ts';
import type { FusionConfig } from './config.ts';

/**
 * MoE-Fusion's gradient loss, unweighted: mean|∇F − g·max(∇vis, ∇ir)| with ∇ the Sobel magnitude; g (default 1, the
 * reference) asks for edges g times as strong as the sources' strongest, to go with a target of amplified detail.
 */
export function gradientLoss(fused: Tensor, vis: Tensor, ir: Tensor, gain = 1): Tensor {
  return tidy(() => {
    const target = maximum(sobelGradient(vis), sobelGradient(ir));
    return l1Loss(sobelGradient(fused), gain === 1 ? target : scale(target, gain));
  });
}

/**
 * MoE-Fusion's object-aware pixel loss: mean|M·F − M·max(vis, ir)| + mean|(1−M)·F − (1−M)·(vis + ir)/2|,
 * M = 1 inside ground-truth boxes (broadcast over channels).
 */
export function pixelLoss(fused: Tensor, vis: Tensor, ir: Tensor, mask: Tensor): Tensor {
  return tidy(() => {
    const foreground = maskedL1Loss(fused, maximum(vis, ir), mask);
    const background = maskedL1Loss(fused, scale(add(vis, ir), 0.5), addScalar(neg(mask), 1));
    return add(foreground, background);
  });
}

/**
 * What the pixel loss compares the fused image with: the reference's foreground mask M (max(vis, ir) inside, the
 * mean outside; see pixelLoss), or a target image (an L1 distance to it everywhere).
 */
export type PixelTarget = { mask: Tensor } | { image: Tensor };

export interface FusionLosses {
  grad: Tensor;
  pixel: Tensor;
  aux: Tensor;
  total: Tensor;
}

/** A training recipe's changes to the objective: the gradient loss's target gain, the pixel loss's weight instead of the configuration's. */
export interface LossRecipe {
  gradGain?: number;
  pixelWeight?: number;
}

/** The weighted training objective; a target mask is (B,1,H,W), 1 inside ground-truth boxes (all zeros when there are none). */
export function fusionLosses(cfg: FusionConfig, fused: Tensor, vis: Tensor, ir: Tensor, target: PixelTarget, aux: Tensor, recipe: LossRecipe = {}): FusionLosses {
  const grad = gradientLoss(fused, vis, ir, recipe.gradGain);
  const pixel = 'mask' in target ? pixelLoss(fused, vis, ir, target.mask) : l1Loss(fused, target.image);
  const total = weightedSum([
    [grad, cfg.gradWeight],
    [pixel, recipe.pixelWeight ?? cfg.pixelWeight],
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
