/**
 * A gated mixture of experts as MoE-Fusion uses it: a noisy top-k gate on a resized copy of the input decides, per
 * image, which k experts run; only those run (routed convolutions driven by a routing table that stays on the GPU);
 * their outputs are mixed by log Σ g·exp(y).
 */
import type { Tensor } from '../tensor/tensor.ts';
import { engine } from '../tensor/engine.ts';
import { resizeBilinear, reshape, noisyTopKGate, routingTable, routedConv2d, combineExperts, type NoisyTopKResult } from '../ops/index.ts';
import { constant, filled, param, stack, type Bound, type conv } from './parameters.ts';

type ConvLayout = ReturnType<typeof conv>;

/**
 * A mixture's tensors, as the reference names them: the gate's matrices (gate inputs × experts, zero at first as in
 * the reference; w_noise only scales the training noise), the experts' convolutions stacked, and the standard
 * normal (mean, std) of the load term, which the reference stores as buffers.
 */
export function mixtureLayout<C extends Record<string, ConvLayout>>(gateInputs: number, experts: number, convs: C) {
  return {
    w_gate: param([gateInputs, experts], filled(0)),
    w_noise: param([gateInputs, experts], filled(0), { trainingOnly: true }),
    experts: stack(experts, convs),
    mean: constant(0),
    std: constant(1),
  };
}

export type MixtureParams<T = Tensor> = Bound<ReturnType<typeof mixtureLayout<Record<string, ConvLayout>>>, T>;

/** The stages a mixture marks (rt.timestamp) as it records its work, in order; progress displays count them. */
export const mixtureStages = (label: string): [gate: string, experts: string] => [`${label} gate`, `${label} experts`];

export interface MixtureOptions {
  /** Names its stages: the mixture's state-dict name. */
  label: string;
  k: number;
  gateGrid: [number, number];
  lossCoef: number;
  train: boolean;
  /** N(0,1) noise (B,E) of the training gate, drawn by the caller (required when training). */
  noise?: Tensor;
  /**
   * Inputs stacked along the batch: one group per modality. With 2 groups (local experts) the first half of the
   * experts read group 0 (visible), the second half group 1 (infrared).
   */
  groups: number;
}

/** Runs the gate on `gateInput` (B,C,H,W) and the chosen experts on `stacked` (groups·B, C', H, W). */
export function mixture(p: MixtureParams, gateInput: Tensor, stacked: Tensor, o: MixtureOptions): { y: Tensor; gate: NoisyTopKResult } {
  const B = gateInput.shape[0];
  const rt = engine().rt;
  const [gateStage, expertStage] = mixtureStages(o.label);
  rt.timestamp(gateStage);
  const small = resizeBilinear(gateInput, o.gateGrid[0], o.gateGrid[1]);
  const flat = reshape(small, [B, -1]);
  const experts = p.w_gate.shape[1];
  const gate = noisyTopKGate(flat, p.w_gate, p.w_noise, {
    k: o.k,
    train: o.train,
    noise: o.noise,
    lossCoef: o.lossCoef,
  });
  const first = routingTable(gate.topIndices, experts, o.groups > 1 ? { inputOf: 'expertGroup', groups: o.groups } : {});
  const chained = routingTable(gate.topIndices, experts, { inputOf: 'self' });
  rt.timestamp(expertStage);
  // Each layer's input is released as soon as the next layer has read it: at 640×480 a global expert's 160→64
  // output alone is 157 MB (the autograd graph keeps its own reference where the backward needs it).
  const layers = Object.values(p.experts);
  let h = stacked;
  layers.forEach((c, layer) => {
    const input = h;
    h = routedConv2d(h, c.weight, c.bias, layer === 0 ? first : chained, { relu: layer < layers.length - 1 });
    if (input !== stacked) input.dispose();
  });
  const y = combineExperts(h, gate.gates, gate.topIndices);
  h.dispose();
  return { y, gate };
}
