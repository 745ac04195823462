/**
 * The engine's other kernels at MoE-Fusion's shapes, for bench/kernels.ts: gradients of the convolution, the
 * routed (expert) convolution, gating, dispatch and combine, resize, attention, losses, reductions and Adam. The
 * peers have no like-for-like op for most of them, so they are timed on the engine alone: GFLOP/s for the
 * compute-bound ones, GB/s (the bytes a kernel must read and write at least) for the memory-bound ones.
 */
import { noGrad } from '../src/tensor/engine.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { conv2dInputGradKernel } from '../src/kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../src/kernels/conv2d-grad.ts';
import { attentionKernel, attentionGradKernel } from '../src/kernels/attention.ts';
import { adamKernel } from '../src/kernels/optimizer.ts';
import { routedConv2d, noisyTopKGate, routingTable, combineExperts, resizeBilinear, softmax, sum, add } from '../src/ops/index.ts';
import { gradientLoss } from '../src/model/losses.ts';
import { randomData, type Timed } from './peers/common.ts';
import { timed } from './peers/engine.ts';

export interface EngineCase {
  name: string;
  /** What `amount` counts: floating-point operations or bytes moved. */
  unit: 'flop' | 'byte';
  amount: number;
  /** Allocates the inputs and returns the timed run (outputs disposed after each run, inputs by `dispose`). */
  prepare(): Timed;
}

const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);
const positive = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed).map(Math.abs), shape);

/** Prepares inputs and a run that works without recording gradients. */
function engineCase(name: string, unit: EngineCase['unit'], amount: number, inputs: () => Tensor[], run: (xs: Tensor[]) => Tensor | Tensor[]): EngineCase {
  return {
    name,
    unit,
    amount,
    prepare() {
      const xs = inputs();
      return timed(() => noGrad(() => run(xs)), xs);
    },
  };
}

/** The cases at working size width×height, batch 1 (the gates at their fixed 640×480 grids, as the model). */
export function engineCases(width: number, height: number): EngineCase[] {
  const [H, W] = [height, width];
  const px = H * W;
  const conv = (cin: number, cout: number) => 2 * cin * cout * 9 * px;
  const MB = 4; // bytes per float
  const L = 1024;
  const heads = 4;
  const D = 32;
  const gateInputs = 160 * 60 * 80; // the global gate's grid
  const params = 8_495_722; // MoE-Fusion's parameter count
  return [
    engineCase('conv3x3 160→64 input gradient', 'flop', conv(160, 64), () => [random([1, 64, H, W], 1), random([1, 64, 160, 3, 3], 2)], ([gy, w]) =>
      conv2dInputGradKernel(gy, w, null, 1, 1)),
    engineCase('conv3x3 160→64 weight gradient', 'flop', conv(160, 64), () => [random([1, 160, H, W], 1), random([1, 64, H, W], 2)], ([x, gy]) => {
      const { dw, db } = conv2dWeightGradKernel(x, gy, null, 1, 3, 1);
      return [dw, db];
    }),
    engineCase('routed conv 160→64, top-2 of 4 experts', 'flop', 2 * conv(160, 64), () => [random([1, 160, H, W], 1), random([4, 64, 160, 3, 3], 2), random([4, 64], 3), Tensor.fromArray([2, 0], [1, 2], 'u32')], ([x, w, b, top]) => {
      const table = routingTable(top, 4);
      return [routedConv2d(x, w, b, table, { relu: true }), table];
    }),
    engineCase('resize 160 channels to the gate grid 80×60', 'byte', MB * 160 * (px + 80 * 60), () => [random([1, 160, H, W], 1)], ([x]) => resizeBilinear(x, 60, 80)),
    engineCase('noisy top-2 gate, 768 000 inputs → 4 experts (training)', 'byte', MB * 2 * gateInputs * 4 + MB * gateInputs, () => [random([1, gateInputs], 1), random([gateInputs, 4], 2), random([gateInputs, 4], 3), random([1, 4], 4)], ([x, wg, wn, noise]) => {
      const r = noisyTopKGate(x, wg, wn, { k: 2, train: true, lossCoef: 0.02, noise });
      return [r.gates, r.topIndices, r.load, r.importance, r.auxLoss];
    }),
    engineCase('log-sum-exp combine of 2 experts', 'byte', MB * 3 * px, () => [random([2, 1, H, W], 1), positive([1, 4], 2), Tensor.fromArray([2, 0], [1, 2], 'u32')], ([y, g, top]) =>
      combineExperts(y, g, top)),
    engineCase('attention forward (1×4 heads×1024×32)', 'flop', 4 * heads * L * L * D, () => [random([1, heads, L, D], 1), random([1, heads, L, D], 2), random([1, heads, L, D], 3)], ([q, k, v]) => {
      const { out, lse } = attentionKernel(q, k, v);
      return [out, lse];
    }),
    engineCase('attention backward (1×4 heads×1024×32)', 'flop', 10 * heads * L * L * D, () => {
      const [q, k, v] = [random([1, heads, L, D], 1), random([1, heads, L, D], 2), random([1, heads, L, D], 3)];
      const { out, lse } = attentionKernel(q, k, v);
      return [q, k, v, out, lse, random([1, heads, L, D], 4)];
    }, ([q, k, v, out, lse, g]) => {
      const { dq, dk, dv } = attentionGradKernel(q, k, v, out, lse, g);
      return [dq, dk, dv];
    }),
    engineCase('gradient loss (3 Sobel, max, L1)', 'byte', MB * 3 * px, () => [random([1, 1, H, W], 1), random([1, 1, H, W], 2), random([1, 1, H, W], 3)], ([f, v, i]) =>
      gradientLoss(f, v, i)),
    engineCase('add, 160 channels', 'byte', MB * 3 * 160 * px, () => [random([1, 160, H, W], 1), random([1, 160, H, W], 2)], ([a, b]) => add(a, b)),
    engineCase('sum, 160 channels', 'byte', MB * 160 * px, () => [random([1, 160, H, W], 1)], ([x]) => sum(x)),
    engineCase('softmax, 1024 rows of 1024', 'byte', MB * 2 * L * L, () => [random([L, L], 1)], ([x]) => softmax(x)),
    engineCase('Adam step, 8.5 M parameters', 'byte', MB * 7 * params, () => [random([params], 1), random([params], 2), Tensor.zeros([params]), Tensor.zeros([params])], ([p, g, m, v]) => {
      adamKernel(p, g, m, v, { beta1: 0.9, beta2: 0.999, oneMinusBeta1: 0.1, oneMinusBeta2: 0.001, eps: 1e-8, coupledDecay: 0, paramDecay: 1, stepSize: 1e-3, bc2Sqrt: 0.0316 });
      return [];
    }),
  ];
}
