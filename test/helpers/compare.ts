/** Comparing GPU results (float32) with float64 references. */
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './gpu.ts';
import { describeComparison, type Comparison } from '../../src/check/compare.ts';
import { runFamily, type KernelCase, type KernelFamily } from '../../src/check/cases/family.ts';

export interface CloseOptions {
  /** Relative tolerance, against max(|expected|) scale per element (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-6). */
  atol?: number;
  what?: string;
}

/**
 * Asserts |actual − expected| ≤ atol + rtol·max(|expected_i|, rms(expected)) for every element.
 * The rms term keeps elements that cancel to ~0 (sums of signed terms) from demanding impossible accuracy.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): void {
  const { rtol = 1e-4, atol = 1e-6, what = 'values' } = opts;
  assert.is(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  let ss = 0;
  for (let i = 0; i < expected.length; i++) ss += expected[i] * expected[i];
  const rms = Math.sqrt(ss / Math.max(1, expected.length));
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const err = Math.abs(a - e);
    const tol = atol + rtol * Math.max(Math.abs(e), rms);
    if (!(err <= tol) && (worst < 0 || err / tol > worstErr)) {
      worst = i;
      worstErr = err / tol;
    }
  }
  if (worst >= 0)
    assert.unreachable(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (error ${Math.abs(actual[worst] - expected[worst]).toExponential(3)}, ${worstErr.toFixed(1)}× the tolerance rtol=${rtol} atol=${atol})`,
    );
}

/** Largest relative error max|a−e| / max|e|, for reports (shared with `moefusion selftest`). */
export { maxRelError } from '../../src/check/compare.ts';

/** Fails listing the comparisons that failed (at most 10), or when there were none. */
export function assertComparisons(list: readonly Comparison[], what: string): void {
  assert.ok(list.length > 0, `${what}: nothing was compared`);
  const failing = list.filter((c) => !c.pass);
  if (failing.length) assert.unreachable(`${what}: ${failing.length} of ${list.length} comparisons failed:\n${failing.slice(0, 10).map(describeComparison).join('\n')}`);
}

/**
 * Runs every case of a catalogue family (src/check/cases/) on every path it has here, against its float64
 * reference; `each` sees each case's comparisons as it ends (e.g. to read dispatch counts).
 */
export async function assertFamily(f: KernelFamily, each?: (c: KernelCase, list: Comparison[]) => void): Promise<void> {
  assertComparisons(await runFamily(f, 'all', true, each), f.name);
}

/** The test of a kernel file that runs its catalogue family (assertFamily), under `title`. */
export function familyTest(t: Test, title: string, f: KernelFamily): void {
  t(title, async () => {
    await gpu();
    await assertFamily(f);
  });
}
