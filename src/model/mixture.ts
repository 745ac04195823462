/**
 * A gated mixture of experts as MoE-Fusion uses it: a noisy top-k gate on a resized copy of the input decides, per
 * image, which k experts run; only those run (routed convolutions driven by a routing table that stays on the GPU);
 * their outputs are mixed by log Σ g·exp(y).
 */
import type { Tensor } from '../tensor/tensor.ts';
import { engine } from '../tensor/engine.ts';
import { resizeBilinear, reshape, noisyTopKGate, routingTable, routedConv2d, combineExperts, type NoisyTopKResult } from '../ops/index.ts';
import type { ConvSpec, ParamSet } from './parameters.ts';

export interface MixtureOptions {
  name: string;
  convs: ConvSpec[];
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
export function mixture(params: ParamSet, gateInput: Tensor, stacked: Tensor, o: MixtureOptions): { y: Tensor; gate: NoisyTopKResult } {
  const B = gateInput.shape[0];
  const rt = engine().rt;
  rt.timestamp(`${o.name} gate`);
  const small = resizeBilinear(gateInput, o.gateGrid[0], o.gateGrid[1]);
  const flat = reshape(small, [B, -1]);
  const wGate = params.get(`${o.name}.w_gate`)!;
  const experts = wGate.shape[1];
  const gate = noisyTopKGate(flat, wGate, params.get(`${o.name}.w_noise`)!, {
    k: o.k,
    train: o.train,
    noise: o.noise,
    lossCoef: o.lossCoef,
  });
  const first = routingTable(gate.topIndices, experts, o.groups > 1 ? { inputOf: 'expertGroup', groups: o.groups } : {});
  const chained = routingTable(gate.topIndices, experts, { inputOf: 'self' });
  rt.timestamp(`${o.name} experts`);
  // Each layer's input is released as soon as the next layer has read it: at 640×480 a global expert's 160→64
  // output alone is 157 MB (the autograd graph keeps its own reference where the backward needs it).
  let h = stacked;
  o.convs.forEach((c, layer) => {
    const last = layer === o.convs.length - 1;
    const input = h;
    h = routedConv2d(
      h,
      params.get(`${o.name}.experts.${c.name}.weight`)!,
      params.get(`${o.name}.experts.${c.name}.bias`)!,
      layer === 0 ? first : chained,
      { relu: !last },
    );
    if (input !== stacked) input.dispose();
  });
  const y = combineExperts(h, gate.gates, gate.topIndices);
  h.dispose();
  return { y, gate };
}
