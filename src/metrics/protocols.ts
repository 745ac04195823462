/**
 * The three metric protocols (see docs/metrics.md): how images become gray planes, and which variant of each
 * metric is used. A = infrared source, B = visible source, F = fused image.
 */
import type { Image } from '../io/image.ts';
import { averageGradient, spatialFrequency } from './gradient.ts';
import { entropy, mutualInformation } from './information.ts';
import { assertSameSize, makePlane, memoizeByObject, type Plane } from './plane.ts';
import { qabf } from './qabf.ts';
import { matlabSsim, skimageSsim, ssim, vifbSsim } from './ssim.ts';
import {
  correlationCoefficient,
  psnrPeakOfFused,
  psnrTang,
  psnrVifb,
  standardDeviation,
  sumOfCorrelationsOfDifferences,
} from './statistics.ts';
import { visualInformationFidelity } from './vif.ts';

export const METRIC_NAMES = ['EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'CC', 'VIF', 'Qabf', 'SSIM', 'PSNR'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export type MetricValues = Record<MetricName, number>;

export const PROTOCOL_NAMES = ['tang', 'cddfuse', 'vifb'] as const;
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];

export interface Protocol {
  name: ProtocolName;
  description: string;
  /** Scores the fused image against its sources; only `metrics` if given (the others are NaN). */
  score(fused: Image, ir: Image, vi: Image, metrics?: readonly MetricName[]): MetricValues;
}

type MetricThunks = Record<MetricName, () => number>;

/** Evaluates the chosen metrics; the rest are left as NaN. */
function evaluateThunks(thunks: MetricThunks, metrics: readonly MetricName[] = METRIC_NAMES): MetricValues {
  const values = Object.fromEntries(METRIC_NAMES.map((m) => [m, NaN])) as MetricValues;
  for (const m of metrics) values[m] = thunks[m]();
  return values;
}

/** Channel k as an 8-bit-scale plane (16-bit data is brought to 0..255 as MATLAB's im2uint8 does). */
export function channelPlane(image: Image, k: number): Plane {
  const { width, height, channels, data } = image;
  const out = new Float64Array(width * height);
  if (image.bitDepth === 16) for (let i = 0; i < out.length; i++) out[i] = Math.round(data[i * channels + k] / 257);
  else for (let i = 0; i < out.length; i++) out[i] = data[i * channels + k];
  return makePlane(width, height, out);
}

/** Every colour channel of an image (alpha left out), memoised so that a source's planes are shared. */
const colourPlanes = memoizeByObject((image: Image): Plane[] =>
  [0, 1, 2].slice(0, Math.min(3, image.channels)).map((k) => channelPlane(image, k)),
);

const isColour = (image: Image) => image.channels >= 3;

/** MATLAB rgb2gray on uint8: weighted sum, rounded half away from zero (values are positive). */
export const matlabGray = memoizeByObject((image: Image): Plane => {
  if (!isColour(image)) return channelPlane(image, 0);
  const [r, g, b] = colourPlanes(image).map((p) => p.data);
  const out = new Float64Array(r.length);
  const [wr, wg, wb] = [0.298936021293775, 0.587043074451121, 0.114020904255103];
  for (let i = 0; i < out.length; i++) out[i] = Math.round(wr * r[i] + wg * g[i] + wb * b[i]);
  return makePlane(image.width, image.height, out);
});

/** NumPy's round: half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * CDDFuse reads with cv2.imread (gray files become 3 equal channels), converts float32 BGR to gray with
 * 0.299 R + 0.587 G + 0.114 B in float32, then np.round.
 */
export const opencvGray = memoizeByObject((image: Image): Plane => {
  if (!isColour(image)) return channelPlane(image, 0);
  const [r, g, b] = [0, 1, 2].map((k) => channelPlane(image, k).data);
  const f = Math.fround;
  const out = new Float64Array(r.length);
  for (let i = 0; i < out.length; i++)
    out[i] = roundHalfEven(f(f(f(b[i] * f(0.114)) + f(g[i] * f(0.587))) + f(r[i] * f(0.299))));
  return makePlane(image.width, image.height, out);
});

/** VIFB's MI input: min-max stretched to [0,1], then int16(x·255) levels (round half away from zero). */
export function stretchToLevels(p: Plane): Plane {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of p.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const out = new Float64Array(p.data.length);
  if (hi !== lo) for (let i = 0; i < out.length; i++) out[i] = Math.round(((p.data[i] - lo) / (hi - lo)) * 255);
  return makePlane(p.width, p.height, out);
}

/** Side by side, as VIFB's spatial-frequency loop sees an M×N×3 array through two subscripts: M×3N. */
function concatenateHorizontally(planes: Plane[]): Plane {
  const { width, height } = planes[0];
  const out = makePlane(width * planes.length, height);
  planes.forEach((p, k) => {
    for (let y = 0; y < height; y++) out.data.set(p.data.subarray(y * width, (y + 1) * width), y * out.width + k * width);
  });
  return out;
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

const tang: Protocol = {
  name: 'tang',
  description: 'Linfeng-Tang/Evaluation-for-Image-Fusion (MATLAB): SeAFusion, PIAFusion tables',
  score(fused, ir, vi, metrics) {
    const [f, a, b] = [fused, ir, vi].map(matlabGray);
    assertSameSize(f, a, b);
    const mi = (x: Plane) => mutualInformation(f, x, { base: 2, saturatedJointBins: true });
    return evaluateThunks(
      {
        EN: () => entropy(f, 2),
        SD: () => standardDeviation(f),
        SF: () => spatialFrequency(f, 'differences'),
        AG: () => averageGradient(f, 'interior'),
        MI: () => mi(a) + mi(b),
        SCD: () => sumOfCorrelationsOfDifferences(f, a, b),
        CC: () => correlationCoefficient(f, a, b),
        VIF: () => visualInformationFidelity(f, a, b),
        Qabf: () => qabf(f, a, b, 'im2double'),
        SSIM: () => 0.5 * ssim(f, a, matlabSsim) + 0.5 * ssim(f, b, matlabSsim),
        PSNR: () => psnrTang(f, a, b),
      },
      metrics,
    );
  },
};

const cddfuse: Protocol = {
  name: 'cddfuse',
  description: 'Zhaozixiang1228/MMIF-CDDFuse utils/Evaluator.py (Python): CDDFuse, DDFM, EMMA tables',
  score(fused, ir, vi, metrics) {
    const [f, a, b] = [fused, ir, vi].map(opencvGray);
    assertSameSize(f, a, b);
    const mi = (x: Plane) => mutualInformation(f, x, { base: 'e', saturatedJointBins: false });
    return evaluateThunks(
      {
        EN: () => entropy(f, 2),
        SD: () => standardDeviation(f),
        SF: () => spatialFrequency(f, 'differences'),
        AG: () => averageGradient(f, 'pixels'),
        MI: () => mi(a) + mi(b),
        SCD: () => sumOfCorrelationsOfDifferences(f, a, b),
        CC: () => correlationCoefficient(f, a, b),
        VIF: () => visualInformationFidelity(f, a, b, true),
        Qabf: () => qabf(f, a, b),
        SSIM: () => ssim(f, a, skimageSsim) + ssim(f, b, skimageSsim),
        PSNR: () => psnrPeakOfFused(f, a, b),
      },
      metrics,
    );
  },
};

/** VIFB's metrics of a single fused channel against single-channel sources (SF is taken over all channels). */
function vifbChannelThunks(f: Plane, a: Plane, b: Plane): Omit<MetricThunks, 'SF'> {
  const stretchedF = stretchToLevels(f);
  const mi = (x: Plane) => mutualInformation(stretchedF, stretchToLevels(x), { base: 'e', saturatedJointBins: false });
  return {
    EN: () => entropy(f, 2),
    SD: () => standardDeviation(f),
    AG: () => averageGradient(f, 'interior'),
    MI: () => mi(a) + mi(b),
    SCD: () => sumOfCorrelationsOfDifferences(f, a, b),
    CC: () => correlationCoefficient(f, a, b),
    VIF: () => visualInformationFidelity(f, a, b),
    Qabf: () => qabf(f, a, b),
    SSIM: () => ssim(b, f, vifbSsim) + ssim(a, f, vifbSsim),
    PSNR: () => psnrVifb(f, a, b),
  };
}

/**
 * VIFB's MATLAB metrics. A colour fused image is scored channel by channel, each against the same channel of a
 * colour source (or the gray source), and the scores averaged; a gray fused image is scored against
 * rgb2gray'ed sources. VIFB has no CC, SCD or VIF of its own: those use the tang formulas, per channel.
 */
const vifb: Protocol = {
  name: 'vifb',
  description: 'xingchenzhang/VIFB metrics (MATLAB): the VIFB benchmark',
  score(fused, ir, vi, metrics) {
    const channels = isColour(fused) ? [0, 1, 2] : [0];
    const pick = (image: Image, k: number) => (isColour(fused) && isColour(image) ? colourPlanes(image)[k] : matlabGray(image));
    const fusedPlanes = channels.map((k) => pick(fused, k));
    const perChannel = channels.map((k) => {
      const [f, a, b] = [fusedPlanes[k], pick(ir, k), pick(vi, k)];
      assertSameSize(f, a, b);
      return vifbChannelThunks(f, a, b);
    });
    const averaged = (m: Exclude<MetricName, 'SF'>) => () => mean(perChannel.map((thunks) => thunks[m]()));
    return evaluateThunks(
      {
        ...(Object.fromEntries(METRIC_NAMES.filter((m) => m !== 'SF').map((m) => [m, averaged(m as Exclude<MetricName, 'SF'>)])) as Omit<MetricThunks, 'SF'>),
        SF: () => spatialFrequency(concatenateHorizontally(fusedPlanes), 'pixels'),
      },
      metrics,
    );
  },
};

export const PROTOCOLS: Record<ProtocolName, Protocol> = { tang, cddfuse, vifb };

export function getProtocol(name: string): Protocol {
  if (!(PROTOCOL_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown protocol "${name}": choose one of ${PROTOCOL_NAMES.join(', ')}`);
  return PROTOCOLS[name as ProtocolName];
}
