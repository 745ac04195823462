/** What the Winograd convolution tests share: the paths to run and the error bound of each tile size. */
import { setConvAlgorithm } from '../../src/kernels/conv2d-choice.ts';
import { setSubgroupsAllowed, subgroupSize } from '../../src/kernels/subgroups.ts';

/**
 * Largest relative error max|a − e| / max|e| allowed per tile size (inputs and weights uniform in [−1, 1), up to a
 * few dozen channels): F(4×4) 2e-5, F(6×6) 6e-5, about twice the worst measured on the tests' cases.
 */
export const WINOGRAD_BOUND: Record<number, number> = { 4: 2e-5, 6: 6e-5 };

/**
 * Runs body with the Winograd path forced, for F(4×4) and F(6×6), each with the subgroup multiply (when the adapter
 * has subgroups of 8 lanes or more) and the portable one. Restores the automatic choice and subgroups afterwards.
 */
export async function forEachWinogradMode(body: (mode: string, m: number) => Promise<void>): Promise<void> {
  const subs = subgroupSize() ? [true, false] : [false];
  try {
    for (const m of [4, 6])
      for (const sub of subs) {
        setConvAlgorithm(m === 4 ? 'winograd4' : 'winograd6');
        setSubgroupsAllowed(sub);
        await body(`F(${m}×${m})${sub ? ' subgroups' : ' portable'}`, m);
      }
  } finally {
    setConvAlgorithm('auto');
    setSubgroupsAllowed(true);
  }
}
