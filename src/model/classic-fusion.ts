/**
 * Training-free fusions on the CPU: the baselines any trained weights must beat, and the targets the pixel loss can
 * pull towards. Planes are gray, row-major, values in [0,1].
 *
 * Multi-scale fusion: both images are split into Gaussian detail layers (differences of Gaussians at σ = 1, 2, 4, 8,
 * without decimation) and a base (the coarsest Gaussian). Each detail layer keeps, per pixel, the source whose
 * detail is larger in magnitude; the base is the brighter of the two bases. The sum keeps the strongest edges and
 * textures of either image at every scale, and the bright (warm) regions of the infrared.
 */
import { filterSameReplicate, gaussianTaps } from '../metrics/filter.ts';
import { makePlane } from '../metrics/plane.ts';

export const CLASSIC_METHODS = ['max', 'multiscale'] as const;
export type ClassicMethod = (typeof CLASSIC_METHODS)[number];

export interface MultiscaleOptions {
  /** Gaussian scales of the detail layers, ascending (default 1, 2, 4, 8). */
  sigmas?: readonly number[];
  /** Factor on every detail layer (1 = the sources' own contrast). */
  detailGain?: number;
}

export const MULTISCALE_SIGMAS = [1, 2, 4, 8] as const;

/** max(ir, vis) per pixel. */
export function maxFusion(ir: Float32Array, vis: Float32Array): Float32Array {
  const out = new Float32Array(ir.length);
  for (let i = 0; i < ir.length; i++) out[i] = Math.max(ir[i], vis[i]);
  return out;
}

/** The multi-scale max-abs fusion above, unclamped. */
export function multiscaleFusion(ir: Float32Array, vis: Float32Array, width: number, height: number, opts: MultiscaleOptions = {}): Float32Array {
  const sigmas = opts.sigmas ?? MULTISCALE_SIGMAS;
  const gain = opts.detailGain ?? 1;
  const n = width * height;
  if (ir.length !== n || vis.length !== n) throw new Error(`multiscaleFusion: planes of ${ir.length} and ${vis.length} values for ${width}×${height}`);
  const out = new Float64Array(n);
  const [srcIr, srcVis] = [new Float64Array(ir), new Float64Array(vis)];
  let [prevIr, prevVis]: Float64Array[] = [srcIr, srcVis];
  for (const sigma of sigmas) {
    const [gIr, gVis] = [blur(srcIr, width, height, sigma), blur(srcVis, width, height, sigma)];
    for (let i = 0; i < n; i++) {
      const dIr = prevIr[i] - gIr[i];
      const dVis = prevVis[i] - gVis[i];
      out[i] += gain * (Math.abs(dIr) >= Math.abs(dVis) ? dIr : dVis);
    }
    [prevIr, prevVis] = [gIr, gVis];
  }
  const result = new Float32Array(n);
  for (let i = 0; i < n; i++) result[i] = out[i] + Math.max(prevIr[i], prevVis[i]);
  return result;
}

/** One of the classic fusions by name. */
export function classicFusion(method: ClassicMethod, ir: Float32Array, vis: Float32Array, width: number, height: number): Float32Array {
  return method === 'max' ? maxFusion(ir, vis) : multiscaleFusion(ir, vis, width, height);
}

/** The image blurred by a Gaussian of σ (3σ radius, replicated borders). */
function blur(p: Float64Array<ArrayBuffer>, width: number, height: number, sigma: number): Float64Array {
  const radius = Math.ceil(3 * sigma);
  return filterSameReplicate(makePlane(width, height, p), gaussianTaps(2 * radius + 1, sigma)).data;
}
