/**
 * VIF as the fusion tables use it: Sheikh and Bovik's multiscale pixel-domain VIF (vifp_mscale), computed for
 * each source as reference and the fused image as distorted, and summed. Not Han et al.'s VIFF.
 */
import { decimate, filterValid, gaussianTaps, multiply } from './filter.ts';
import { memoizeByObject, type Plane } from './plane.ts';

const NOISE_VARIANCE = 2;
const EPS = 1e-10;
const SCALES = 4;

interface Level {
  image: Plane;
  taps: Float64Array;
  mean: Float64Array;
  variance: Float64Array;
}

/** Window size at scale 1..4: 17, 9, 5, 3. */
const windowSize = (scale: number) => 2 ** (SCALES - scale + 1) + 1;

/** The smallest image side for which every scale's 'valid' window fits (41). */
export const VIF_MIN_SIDE = (() => {
  const fits = (side: number) => {
    let s = side;
    for (let scale = 1; scale <= SCALES; scale++) {
      const n = windowSize(scale);
      if (s < n) return false;
      if (scale < SCALES) s = Math.ceil((s - windowSize(scale + 1) + 1) / 2);
    }
    return true;
  };
  let side = 1;
  while (!fits(side)) side++;
  return side;
})();

/** An image at the 4 scales, with its local means and variances: computed once per image (memoised). */
const pyramid = memoizeByObject((p: Plane): Level[] => {
  const levels: Level[] = [];
  let image = p;
  for (let scale = 1; scale <= SCALES; scale++) {
    const n = windowSize(scale);
    const taps = gaussianTaps(n, n / 5);
    if (scale > 1) image = decimate(filterValid(image, taps));
    const mean = filterValid(image, taps).data;
    const variance = filterValid(multiply(image, image), taps).data;
    for (let i = 0; i < variance.length; i++) variance[i] = Math.max(0, variance[i] - mean[i] * mean[i]);
    levels.push({ image, taps, mean, variance });
  }
  return levels;
});

/** Information fidelity terms of one scale: [Σ log10(1 + g²σ1²/(σv²+σn²)), Σ log10(1 + σ1²/σn²)]. */
function scaleTerms(ref: Level, dist: Level): [number, number] {
  const cross = filterValid(multiply(ref.image, dist.image), ref.taps).data;
  const s2 = dist.variance;
  let num = 0;
  let den = 0;
  for (let i = 0; i < cross.length; i++) {
    let s1 = ref.variance[i];
    const s12 = cross[i] - ref.mean[i] * dist.mean[i];
    let g = s12 / (s1 + EPS);
    let sv = s2[i] - g * s12;
    if (s1 < EPS) {
      g = 0;
      sv = s2[i];
      s1 = 0;
    }
    if (s2[i] < EPS) {
      g = 0;
      sv = 0;
    }
    if (g < 0) {
      sv = s2[i];
      g = 0;
    }
    if (sv <= EPS) sv = EPS;
    num += Math.log10(1 + (g * g * s1) / (sv + NOISE_VARIANCE));
    den += Math.log10(1 + s1 / NOISE_VARIANCE);
  }
  return [num, den];
}

/**
 * VIFP of `ref` against `dist`, over 4 scales: window n = 2^(5−s)+1, σ = n/5; from scale 2 on, both images
 * are low-passed ('valid') and decimated by 2 first.
 */
export function vifp(ref: Plane, dist: Plane): number {
  const refLevels = pyramid(ref);
  const distLevels = pyramid(dist);
  let num = 0;
  let den = 0;
  refLevels.forEach((level, s) => {
    const [nu, de] = scaleTerms(level, distLevels[s]);
    num += nu;
    den += de;
  });
  return num / den;
}

/** VIF = VIFP(A,F) + VIFP(B,F). `nanAsOne` mirrors CDDFuse, which scores an undefined VIFP (flat source) as 1. */
export function visualInformationFidelity(f: Plane, a: Plane, b: Plane, nanAsOne = false): number {
  return [vifp(a, f), vifp(b, f)].map((v) => (nanAsOne && Number.isNaN(v) ? 1 : v)).reduce((x, y) => x + y, 0);
}
