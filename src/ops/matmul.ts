/** Differentiable batched matmul. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { matmulKernel } from '../kernels/matmul.ts';
import { sumTo } from './reduce.ts';

/** a [..., M, K] · b [..., K, N] (after the optional transposes). */
export function matmul(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const out = matmulKernel(a, b, transA, transB);
  return record(
    'matmul',
    [a, b],
    out,
    ([g]) => {
      // C = A·B: dA = G·Bᵀ, dB = Aᵀ·G (transposed variants follow by swapping roles).
      const ga = transA ? matmulKernel(b, g!, transB, true) : matmulKernel(g!, b, false, !transB);
      const gb = transB ? matmulKernel(g!, a, true, transA) : matmulKernel(a, g!, !transA, false);
      // A shared (batchless) operand gets the sum over the batch.
      return [sumTo(ga, a.shape), sumTo(gb, b.shape)];
    },
    [a, b],
  );
}
