/** SSIM under the three recipes the protocols use. Inputs on the 0..255 scale. */
import { filterSameReplicate, filterValid, gaussianTaps, multiply, uniformTaps } from './filter.ts';
import { mean, memoizeByObject, type Plane } from './plane.ts';

export interface SsimRecipe {
  /** Local weighted means over the window, 'same' (replicate padded) or 'valid'. */
  filter: (p: Plane) => Plane;
  c1: number;
  c2: number;
  /** Factor on the local (co)variances: n/(n−1) for skimage's sample covariance, else 1. */
  covarianceScale: number;
  /** Local mean and mean square of one image, memoised: sources are compared with several fused images. */
  localMoments: (p: Plane) => { mean: Float64Array; square: Float64Array };
}

function recipe(filter: (p: Plane) => Plane, c1: number, c2: number, covarianceScale: number): SsimRecipe {
  const localMoments = memoizeByObject((p: Plane) => ({ mean: filter(p).data, square: filter(multiply(p, p)).data }));
  return { filter, c1, c2, covarianceScale, localMoments };
}

/** Mean of the SSIM map ((2μxμy+C1)(2σxy+C2)) / ((μx²+μy²+C1)(σx²+σy²+C2)). */
export function ssim(x: Plane, y: Plane, recipe: SsimRecipe): number {
  const { filter, c1, c2, covarianceScale: k } = recipe;
  const { mean: mx, square: xx } = recipe.localMoments(x);
  const { mean: my, square: yy } = recipe.localMoments(y);
  const xy = filter(multiply(x, y)).data;
  const map = new Float64Array(mx.length);
  for (let i = 0; i < map.length; i++) {
    const vx = k * (xx[i] - mx[i] * mx[i]);
    const vy = k * (yy[i] - my[i] * my[i]);
    const cxy = k * (xy[i] - mx[i] * my[i]);
    map[i] = ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
  }
  return mean(map);
}

const gaussian11 = gaussianTaps(11, 1.5);

/** MATLAB `ssim` on double data: Gaussian σ 1.5 (11 taps), replicate padding, DynamicRange 1. */
export const matlabSsim = recipe((p) => filterSameReplicate(p, gaussian11), 0.01 ** 2, 0.03 ** 2, 1);

/** VIFB's ssim: fspecial('gaussian', 11, 1.5), filter2 'valid', K = (0.01, 0.03), L = 255. */
export const vifbSsim = recipe((p) => filterValid(p, gaussian11), (0.01 * 255) ** 2, (0.03 * 255) ** 2, 1);

/**
 * skimage structural_similarity defaults on float images, as CDDFuse calls it: 7×7 uniform window, sample
 * covariance, data range 2 (float dtype range −1..1). skimage averages the map after cropping 3 pixels per
 * border, which is exactly the 'valid' region.
 */
export const skimageSsim = recipe((p) => filterValid(p, uniformTaps(7)), (0.01 * 2) ** 2, (0.03 * 2) ** 2, 49 / 48);
