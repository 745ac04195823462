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
import { compareTensor, family, FORWARD_TOLERANCE, size, type CaseFlags, type Timing } from './family.ts';

/** M×K·K×N; with B, a batch of B products (`shared`: one B for all). */
export interface MatmulCase extends CaseFlags {
  M: number;
  K: number;
  N: number;
  B?: number;
  shared?: boolean;
}

/** The size of the benchmark's square matmul (its rate is the one the others are compared with). */
export const BENCH_MATMUL = 1024;

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
  { B: 1, M: BENCH_MATMUL, K: BENCH_MATMUL, N: BENCH_MATMUL, bench: 'only' }, // the benchmark's reference rate
];

/** The operands' shapes of a batched case. */
const batchShapes = (c: MatmulCase) => [[c.B ?? 1, c.M, c.K], c.shared ? [c.K, c.N] : [c.B ?? 1, c.K, c.N]];

/** The engine part of a batched case (the plain ones run every transpose in the runner). */
const matmulTiming: Timing<MatmulCase> = {
  inputs: (c, rng) => batchShapes(c).map((s) => Tensor.fromArray(rng.uniform(size(s)), s)),
  run: (_, [a, b], variant) => matmul(a, b, false, false, variant),
  cost: (c) => ({ unit: 'flop', amount: 2 * (c.B ?? 1) * c.M * c.K * c.N }),
};

const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

export const matmulFamily = family('matmul', 'subgroups', 101, MATMUL_CASES, (c) => `${c.B ? `${c.B}× ` : ''}${c.M}×${c.K}·${c.K}×${c.N}${c.shared ? ', shared B' : ''}`, async (c, rng, { variant }) => {
  const { M, K, N, B } = c;
  const tol = c.tol ?? FORWARD_TOLERANCE;
  if (B) {
    const [a, b] = batchShapes(c).map((s) => rng.uniform(size(s)));
    const out = noGrad(() => tidy(() => matmulTiming.run(c, batchShapes(c).map((s, i) => Tensor.fromArray([a, b][i], s)), variant) as Tensor));
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
}, matmulTiming);
