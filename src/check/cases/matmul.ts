/**
 * Matmul cases (src/kernels/matmul.ts): tile-unfriendly sizes, each in all four transposes; batches, and batches
 * against one shared right-hand side. The subgroup kernel reads K in chunks of 8 with tails, vec4 rows of B when
 * N % 4 == 0, 8 to 64 lanes along N.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { noGrad, tidy } from '../../tensor/engine.ts';
import { matmul } from '../../ops/index.ts';
import type { Comparison } from '../compare.ts';
import { batchedMatmul, matmul as refMatmul, transpose } from '../reference/matmul.ts';
import { compareTensor, family, FORWARD_TOLERANCE, type CaseFlags } from './family.ts';

/** M×K·K×N; with B, a batch of B products (`shared`: one B for all). */
export interface MatmulCase extends CaseFlags {
  M: number;
  K: number;
  N: number;
  B?: number;
  shared?: boolean;
}

export const MATMUL_CASES: MatmulCase[] = [
  { M: 1, K: 1, N: 1 },
  { M: 5, K: 7, N: 3, quick: true },
  { M: 33, K: 17, N: 65, quick: true },
  { M: 64, K: 64, N: 64 },
  { M: 97, K: 131, N: 31, quick: true },
  { M: 9, K: 23, N: 300, quick: true },
  { M: 37, K: 53, N: 29, selftest: true },
  { M: 128, K: 256, N: 64, selftest: true },
  { M: 33, K: 70, N: 18, selftest: true },
  { M: 19, K: 41, N: 66, selftest: true },
  { B: 3, M: 9, K: 10, N: 11, quick: true },
  { B: 3, M: 10, K: 9, N: 12, shared: true, quick: true },
];

const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

export const matmulFamily = family('matmul', 'subgroups', 101, MATMUL_CASES, (c) => `${c.B ? `${c.B}× ` : ''}${c.M}×${c.K}·${c.K}×${c.N}${c.shared ? ', shared B' : ''}`, async (c, rng, { variant }) => {
  const { M, K, N, B } = c;
  const tol = c.tol ?? FORWARD_TOLERANCE;
  if (B) {
    const a = rng.uniform(B * M * K);
    const b = rng.uniform((c.shared ? 1 : B) * K * N);
    const out = noGrad(() => tidy(() => matmul(Tensor.fromArray(a, [B, M, K]), Tensor.fromArray(b, c.shared ? [K, N] : [B, K, N]), false, false, variant)));
    const list = await compareTensor('A·B', out, [B, M, N], batchedMatmul(a, b, B, M, K, N, !!c.shared), tol);
    out.dispose();
    return list;
  }
  const list: Comparison[] = [];
  for (const [tA, tB] of TRANSPOSES) {
    const a = rng.uniform(M * K);
    const b = rng.uniform(K * N);
    const out = noGrad(() => tidy(() => matmul(Tensor.fromArray(tA ? transpose(a, M, K) : a, tA ? [K, M] : [M, K]), Tensor.fromArray(tB ? transpose(b, K, N) : b, tB ? [N, K] : [K, N]), tA, tB, variant)));
    list.push(...(await compareTensor(`${tA ? 'Aᵀ' : 'A'}·${tB ? 'Bᵀ' : 'B'}`, out, [M, N], refMatmul(a, b, M, K, N), tol)));
    out.dispose();
  }
  return list;
});
