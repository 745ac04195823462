/** SD, CC, SCD and PSNR. F is the fused image, A and B the sources, all on the 0..255 scale. */
import { corr2, mean, subtract, type Plane } from './plane.ts';

/** Population standard deviation. */
export function standardDeviation(p: Plane): number {
  const m = mean(p.data);
  let s = 0;
  for (const v of p.data) s += (v - m) ** 2;
  return Math.sqrt(s / p.data.length);
}

/** CC = (corr2(A,F) + corr2(B,F)) / 2. */
export function correlationCoefficient(f: Plane, a: Plane, b: Plane): number {
  return (corr2(a.data, f.data) + corr2(b.data, f.data)) / 2;
}

/** SCD = corr2(F−B, A) + corr2(F−A, B): the sum of the correlations of differences. */
export function sumOfCorrelationsOfDifferences(f: Plane, a: Plane, b: Plane): number {
  return corr2(subtract(f, b).data, a.data) + corr2(subtract(f, a).data, b.data);
}

function sumSquaredDifference(x: Plane, y: Plane): number {
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += (x.data[i] - y.data[i]) ** 2;
  return s;
}

/** Mean of the two mean squared errors, 0..255 scale. */
export function meanSquaredError(f: Plane, a: Plane, b: Plane): number {
  const n = f.data.length;
  return (sumSquaredDifference(f, a) / n + sumSquaredDifference(f, b) / n) / 2;
}

/**
 * Tang: the MSE is taken on [0,1] images but the peak stays 255, so this is textbook PSNR + 20·log10(255)
 * (about 48.13 dB higher).
 */
export function psnrTang(f: Plane, a: Plane, b: Plane): number {
  const mse01 = meanSquaredError(f, a, b) / (255 * 255);
  return 20 * Math.log10(255 / Math.sqrt(mse01));
}

/** cddfuse: 10·log10(max(F)² / MSE) on 0..255. */
export function psnrPeakOfFused(f: Plane, a: Plane, b: Plane): number {
  let peak = -Infinity;
  for (const v of f.data) peak = Math.max(peak, v);
  return 10 * Math.log10((peak * peak) / meanSquaredError(f, a, b));
}

/** VIFB: its `mse` is sqrt(Σ(X−F)²)/(M·N) (a root where a mean was meant); PSNR = 20·log10(255/sqrt(mean of both)). */
export function psnrVifb(f: Plane, a: Plane, b: Plane): number {
  const n = f.data.length;
  const quirkyMse = (Math.sqrt(sumSquaredDifference(a, f)) / n + Math.sqrt(sumSquaredDifference(b, f)) / n) / 2;
  return 20 * Math.log10(255 / Math.sqrt(quirkyMse));
}
