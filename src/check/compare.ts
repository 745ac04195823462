/**
 * Comparisons of GPU results (float32) with references (float64 computed at run time, or PyTorch fixtures), as
 * `moefusion selftest` and the parity test report them: one number per comparison, its tolerance and the verdict.
 */

export interface Comparison {
  /** What was compared, e.g. `grad.encoder.vis_conv1.weight`. */
  what: string;
  /**
   * 'relative': max|actual − expected| / max|expected| over the tensor; 'mismatches': the number of differing
   * elements of an integer result (expert indices), with tolerance 0.
   */
  measure: 'relative' | 'mismatches';
  error: number;
  tolerance: number;
  pass: boolean;
}

/**
 * Largest error relative to the tensor's largest magnitude: max|a−e| / max|e| (NaN anywhere gives Infinity); relative
 * to `floor` at least (a reference that may be 0 everywhere).
 */
export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-30): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= num)) num = Number.isNaN(d) ? Infinity : d;
    den = Math.max(den, Math.abs(expected[i]));
  }
  return num / Math.max(den, floor);
}

/** Compares float results: relative error (see maxRelError) against `tolerance`; a length mismatch fails. */
export function compareValues(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, floor?: number): Comparison {
  const error = actual.length === expected.length ? maxRelError(actual, expected, floor) : Infinity;
  return { what: actual.length === expected.length ? what : `${what} (length ${actual.length}, expected ${expected.length})`, measure: 'relative', error, tolerance, pass: error <= tolerance };
}

/** Compares integer results element by element: the count of differences must be 0. */
export function compareExact(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): Comparison {
  let error = Math.abs(actual.length - expected.length);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) if (actual[i] !== expected[i]) error++;
  return { what, measure: 'mismatches', error, tolerance: 0, pass: error === 0 };
}

/** The comparison that is furthest from its tolerance (the first failing one wins over any passing one). */
export function worstOf(list: readonly Comparison[]): Comparison | null {
  let worst: Comparison | null = null;
  const score = (c: Comparison) => (c.tolerance > 0 ? c.error / c.tolerance : c.error > 0 ? Infinity : 0);
  for (const c of list) if (!worst || (worst.pass && !c.pass) || (worst.pass === c.pass && score(c) > score(worst))) worst = c;
  return worst;
}

/** One line for a comparison: `grad.x: relative error 3.1e-6 ≤ 1e-4`. */
export function describeComparison(c: Comparison): string {
  if (c.measure === 'mismatches') return `${c.what}: ${c.error} of the values differ${c.pass ? '' : ' (must be equal)'}`;
  return `${c.what}: relative error ${c.error.toExponential(2)} ${c.pass ? '≤' : '>'} ${c.tolerance.toExponential(0)}`;
}
