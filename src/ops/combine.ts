/** Differentiable log-sum-exp combination of the chosen experts' outputs (MoE-Fusion's mixtures). */
import type { Tensor } from '../tensor/tensor.ts';
import { once, record } from '../autograd/tape.ts';
import { combineKernel, combineGradKernel } from '../kernels/combine.ts';

/**
 * y (B·k, C, H, W): the outputs of the chosen experts in the routing table's order (sample b·k + s ran expert
 * topIndices[b, s]); gates (B,E); topIndices (B,k) u32 → (B, C, H, W) = log Σ_s g[b, idx[b,s]]·exp(y[b·k+s]),
 * as the reference's SparseDispatcher.combine (an all-zero sum gives log(2.22e−16)). Differentiable to y and gates.
 */
export function combineExperts(y: Tensor, gates: Tensor, topIndices: Tensor): Tensor {
  const out = combineKernel(y, gates, topIndices);
  return record('combine_experts', [y, gates], out, {
    saved: { y, gates, topIndices },
    // One kernel gives both gradients.
    shared: (dy, { y, gates, topIndices }) => once(() => combineGradKernel(dy, y, gates, topIndices)),
    grads: [(both) => both()[0], (both) => both()[1]],
  });
}
