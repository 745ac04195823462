/**
 * CenterNet's detection losses, composed from differentiable ops: the penalty-reduced focal loss on the heat maps
 * (α = 2, β = 4, written with softplus so log σ(z) never underflows) and L1 losses on log-size and offset at object
 * centres, each summed over levels and divided by the number of objects.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { abs, add, addScalar, clamp, log, mean, mul, neg, scale, sigmoid, softplus, sub, sum } from '../../ops/index.ts';
import type { HeadLevel } from './decode.ts';
import type { DetectionTargets } from './targets.ts';
import type { DetectorOutput } from './network.ts';
import { MODALITIES } from './config.ts';

export interface DetectionLosses {
  heat: Tensor;
  size: Tensor;
  offset: Tensor;
  total: Tensor;
}

/** Focal loss of heat logits z against the positives and negative weights: Σ pos·(1−p)²·(−log p) + w·p²·(−log(1−p)). */
function focalSum(z: Tensor, positive: Tensor, negativeWeight: Tensor): Tensor {
  const p = sigmoid(z);
  const q = sigmoid(neg(z));
  const posTerm = mul(positive, mul(mul(q, q), softplus(neg(z))));
  const negTerm = mul(negativeWeight, mul(mul(p, p), softplus(z)));
  return sum(add(posTerm, negTerm));
}

function maskedL1Sum(pred: Tensor, target: Tensor, centre: Tensor): Tensor {
  return sum(mul(abs(sub(pred, target)), centre));
}

export function detectionLosses(heads: HeadLevel[], targets: DetectionTargets, weights = { size: 1, offset: 1 }): DetectionLosses {
  const norm = 1 / Math.max(1, targets.positives);
  let heat: Tensor | null = null;
  let size: Tensor | null = null;
  let offset: Tensor | null = null;
  const acc = (a: Tensor | null, b: Tensor) => (a ? add(a, b) : b);
  heads.forEach((h, l) => {
    const t = targets.levels[l];
    const [B, C] = h.heat.shape;
    const dims = (c: number) => [B, c, t.h, t.w];
    const centre = Tensor.fromArray(t.centre, dims(1));
    heat = acc(heat, focalSum(h.heat, Tensor.fromArray(t.positive, dims(C)), Tensor.fromArray(t.negativeWeight, dims(C))));
    size = acc(size, maskedL1Sum(h.size, Tensor.fromArray(t.size, dims(2)), centre));
    offset = acc(offset, maskedL1Sum(h.offset, Tensor.fromArray(t.offset, dims(2)), centre));
  });
  const heatLoss = scale(heat!, norm);
  const sizeLoss = scale(size!, norm);
  const offsetLoss = scale(offset!, norm);
  const total = add(add(heatLoss, scale(sizeLoss, weights.size)), scale(offsetLoss, weights.offset));
  return { heat: heatLoss, size: sizeLoss, offset: offsetLoss, total };
}

/**
 * Supervision of the spatial attention (this project's addition; the reference trains it through the detection
 * losses only): binary cross-entropy between each level's attention map and the cells covered by boxes, averaged
 * over the levels. It makes Att mark the objects, which is what the fusion network uses it for.
 */
export function attentionLoss(attention: Tensor[], targets: DetectionTargets): Tensor {
  let total: Tensor | null = null;
  attention.forEach((a, l) => {
    const t = targets.levels[l];
    const shape = [a.shape[0], 1, t.h, t.w];
    const inside = Tensor.fromArray(t.objects, shape);
    const outside = Tensor.fromArray(t.objects.map((v) => 1 - v), shape);
    const p = clamp(a, 1e-6, 1 - 1e-6);
    const bce = neg(mean(add(mul(inside, log(p)), mul(outside, log(addScalar(neg(p), 1))))));
    total = total ? add(total, bce) : bce;
  });
  return scale(total!, 1 / attention.length);
}

/**
 * What both detectors train on: Σ over modalities of the detection losses and, weighted, the attention loss
 * (0.2: enough for Att to mark the objects without slowing the detectors down; measured on synthetic scenes).
 */
export function detectorLoss(out: DetectorOutput, targets: DetectionTargets, attentionWeight = 0.2): Tensor {
  const perModality = MODALITIES.map((m) => {
    const d = detectionLosses(out.heads[m], targets).total;
    return attentionWeight > 0 ? add(d, scale(attentionLoss(out.attention[m], targets), attentionWeight)) : d;
  });
  return add(perModality[0], perModality[1]);
}
