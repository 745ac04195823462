/** Differentiable batched matmul. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { matmulKernel } from '../kernels/matmul.ts';
import type { KernelVariant } from '../kernels/variant.ts';
import { sumTo } from './reduce.ts';

/** a [..., M, K] · b [..., K, N] (after the optional transposes); `variant` for its forward and backward kernels (default: the engine's). */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false, variant?: KernelVariant): Tensor {
  const out = matmulKernel(a, b, transA, transB, variant);
  // C = A·B: dA = G·Bᵀ, dB = Aᵀ·G (transposed variants follow by swapping roles); a shared (batchless) operand gets
  // the sum over the batch.
  return record('matmul', [a, b], out, {
    saved: { a, b },
    grads: [
      (dy, { a, b }) => sumTo(transA ? matmulKernel(b, dy, transB, true, variant) : matmulKernel(dy, b, false, !transB, variant), a.shape),
      (dy, { a, b }) => sumTo(transB ? matmulKernel(dy, a, true, transA, variant) : matmulKernel(a, dy, !transA, false, variant), b.shape),
    ],
  });
}
