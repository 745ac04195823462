/** Differentiable batched matmul. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { matmulKernel } from '../kernels/matmul.ts';
import { sumTo } from './reduce.ts';

/** a [..., M, K] · b [..., K, N] (after the optional transposes). */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const out = matmulKernel(a, b, transA, transB);
  // C = A·B: dA = G·Bᵀ, dB = Aᵀ·G (transposed variants follow by swapping roles); a shared (batchless) operand gets
  // the sum over the batch.
  return record('matmul', [a, b], out, {
    saved: { a, b },
    grads: [
      (dy, { a, b }) => sumTo(transA ? matmulKernel(b, dy, transB, true) : matmulKernel(dy, b, false, !transB), a.shape),
      (dy, { a, b }) => sumTo(transB ? matmulKernel(dy, a, true, transA) : matmulKernel(a, dy, !transA, false), b.shape),
    ],
  });
}
