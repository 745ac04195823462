/**
 * How a fused plane's values become the saved range. 'clamp' cuts them to [0, 1] (the reference's test code);
 * 'stretch' clamps and then maps the image's own min..max onto the full 0..1, as the published peers' test code does
 * before saving (SeAFusion and CDDFuse explicitly, U2Fusion and DenseFuse through scipy's imsave byte-scaling), so
 * that the darkest pixel becomes black and the brightest white. A flat image is left as clamped. No percentiles: a
 * percentile stretch clips detail to raise SD and SF.
 */
export const OUTPUT_RANGES = ['clamp', 'stretch'] as const;
export type OutputRange = (typeof OUTPUT_RANGES)[number];
/** The library's, the CLI's and the page's default: better on 7 of 8 validation metrics with the shipped weights (RESULTS.md). */
export const DEFAULT_RANGE: OutputRange = 'stretch';

/** The plane in [0, 1] under `range` (a new array). */
export function applyRange(values: Float32Array, range: OutputRange): Float32Array {
  const out = values.map((v) => Math.min(1, Math.max(0, v)));
  if (range === 'clamp') return out;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of out) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) return out;
  const scale = 1 / (hi - lo);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] - lo) * scale;
  return out;
}
