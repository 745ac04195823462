/** Entropy (EN) and mutual information (MI) over 256 gray levels. Inputs hold integers 0..255. */
import type { Plane } from './plane.ts';

export type LogBase = 2 | 'e';

function log(x: number, base: LogBase): number {
  return base === 2 ? Math.log2(x) : Math.log(x);
}

function entropyOfCounts(counts: Float64Array, total: number, base: LogBase): number {
  let h = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / total;
    h -= p * log(p, base);
  }
  return h;
}

function level(v: number, where: string): number {
  if (!(v >= 0 && v <= 255) || v !== Math.round(v)) throw new Error(`${where}: gray level ${v} is not an integer in 0..255`);
  return v;
}

export function histogram256(p: Plane): Float64Array {
  const counts = new Float64Array(256);
  for (const v of p.data) counts[level(v, 'histogram')]++;
  return counts;
}

/** EN: entropy of the 256-bin histogram. */
export function entropy(p: Plane, base: LogBase = 2): number {
  return entropyOfCounts(histogram256(p), p.data.length, base);
}

export interface MutualInformationOptions {
  base: LogBase;
  /**
   * Tang's MATLAB code indexes the joint histogram with uint8(x)+1, which saturates at 255:
   * levels 254 and 255 share one joint bin (the marginals keep them apart).
   */
  saturatedJointBins: boolean;
}

/** MI(X,Y) = H(X) + H(Y) − H(X,Y). */
export function mutualInformation(x: Plane, y: Plane, options: MutualInformationOptions): number {
  const n = x.data.length;
  const joint = new Float64Array(256 * 256);
  const top = options.saturatedJointBins ? 254 : 255;
  for (let i = 0; i < n; i++) {
    const a = Math.min(level(x.data[i], 'joint histogram'), top);
    const b = Math.min(level(y.data[i], 'joint histogram'), top);
    joint[a * 256 + b]++;
  }
  const hx = entropyOfCounts(histogram256(x), n, options.base);
  const hy = entropyOfCounts(histogram256(y), n, options.base);
  return hx + hy - entropyOfCounts(joint, n, options.base);
}
