/** Comparing GPU results (float32) with float64 references. */
import * as assert from 'uvu/assert';

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
