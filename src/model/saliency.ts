/**
 * A foreground map for data without boxes: the infrared image's brightness saliency. MoE-Fusion's object-aware
 * pixel loss and its attention Att want 1 on objects and 0 elsewhere; boxes give that, and without them the
 * reference's M = 0 pulls the fused image towards the mean of the sources and washes out contrast. Warm objects are
 * what infrared shows best, so the map is the one-sided luminance contrast of each pixel against the whole image
 * (Zhai & Shah's LC saliency, counting only the pixels it is brighter than):
 *   S(p) = Σ_q max(I(p) − I(q), 0) = Σ_v hist(v) · max(I(p) − v, 0),
 * normalised by its largest value, then raised to `gamma` so that only clearly outstanding pixels get weight. It
 * rises with brightness, ignores dark regions, adapts to each image's histogram, and costs O(pixels + levels²).
 */

/** Levels of the histogram (the inputs are 8-bit images in [0,1]). */
const LEVELS = 256;

/** The default sharpening of the map: S² keeps hot targets near 1 and typical background near 0. */
export const SALIENCY_GAMMA = 2;

/** Brightness saliency in [0,1] of a gray image (row-major values in [0,1]). */
export function infraredSaliency(gray: Float32Array, gamma = SALIENCY_GAMMA): Float32Array {
  const n = gray.length;
  const out = new Float32Array(n);
  if (n === 0) return out;
  const level = (v: number) => Math.min(LEVELS - 1, Math.max(0, Math.round(v * (LEVELS - 1))));
  const hist = new Float64Array(LEVELS);
  for (let i = 0; i < n; i++) hist[level(gray[i])]++;
  // table[l] = Σ_v hist(v)·max(l − v, 0), by running sums: table[l+1] = table[l] + Σ_{v ≤ l} hist(v).
  const table = new Float64Array(LEVELS);
  let below = 0;
  for (let l = 1; l < LEVELS; l++) {
    below += hist[l - 1];
    table[l] = table[l - 1] + below;
  }
  let max = 0;
  for (let l = 0; l < LEVELS; l++) if (hist[l]) max = Math.max(max, table[l]);
  if (max === 0) return out; // a flat image: nothing stands out
  for (let i = 0; i < n; i++) out[i] = (table[level(gray[i])] / max) ** gamma;
  return out;
}
