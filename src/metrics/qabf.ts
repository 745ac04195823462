/** Qabf, Xydeas and Petrovic's edge-preservation measure, as the MATLAB and CDDFuse codes compute it. */
import { memoizeByObject, type Plane } from './plane.ts';

const TG = 0.9994;
const KG = -15;
const DG = 0.5;
const TA = 0.9879;
const KA = -22;
const DA = 0.8;

/**
 * The scale the reference code feeds to Qabf. 'bytes': the 0..255 gray levels (CDDFuse, VIFB). 'im2double':
 * MATLAB's im2double, levels/255 (the `tang` code). Qabf would be scale-free but for two effects the
 * reference values contain: where gA = gF the "relative strength" is gF itself (≈ 1e-2 on [0,1] data, so such
 * pixels count as lost instead of kept), and levels/255 are inexact, so a Sobel response whose exact value is
 * 0 comes out as a rounding residue of either sign, which turns its angle from π/2 into ±π/2.
 */
export type QabfScale = 'bytes' | 'im2double';

export interface Edges {
  strength: Float64Array;
  angle: Float64Array;
}

/**
 * Sobel strength sqrt(sx²+sy²) and orientation atan(sy/sx) (π/2 where sx = 0) of conv2(p, SOBEL_X, 'same') and
 * conv2(p, SOBEL_Y, 'same'): true convolution with zero padding, x kernel [−1 0 1; −2 0 2; −1 0 1], y kernel
 * [1 2 1; 0 0 0; −1 −2 −1]. The terms are added in conv2's order (the kernel's elements column by column, each
 * times the pixel it meets), which decides the sign of the residues on im2double data.
 */
function sobelEdges(p: Plane, divisor: number): Edges {
  const { width: w, height: h, data } = p;
  const pw = w + 2;
  const padded = new Float64Array(pw * (h + 2));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) padded[(y + 1) * pw + x + 1] = divisor === 1 ? data[y * w + x] : data[y * w + x] / divisor;
  const strength = new Float64Array(w * h);
  const angle = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = (y + 1) * pw + x + 1; // this pixel in the padded plane
      const tl = padded[c - pw - 1], tc = padded[c - pw], tr = padded[c - pw + 1];
      const ml = padded[c - 1], mr = padded[c + 1];
      const bl = padded[c + pw - 1], bc = padded[c + pw], br = padded[c + pw + 1];
      const sx = -br - 2 * mr - tr + bl + 2 * ml + tl;
      const sy = br - tr + 2 * bc - 2 * tc + bl - tl;
      const i = y * w + x;
      strength[i] = Math.sqrt(sx * sx + sy * sy);
      angle[i] = sx === 0 ? Math.PI / 2 : Math.atan(sy / sx);
    }
  }
  return { strength, angle };
}

/** Edges of an image at each scale, memoised: a source's edges serve every fused image scored against it. */
const edgesAt: Record<QabfScale, (p: Plane) => Edges> = {
  bytes: memoizeByObject((p: Plane) => sobelEdges(p, 1)),
  im2double: memoizeByObject((p: Plane) => sobelEdges(p, 255)),
};

/** Σ Q_XF·gX and Σ gX over the pixels: the share of source X's edges that F preserves. */
function preserved(x: Edges, f: Edges): [number, number] {
  const { strength: gx, angle: ax } = x;
  const { strength: gf, angle: af } = f;
  let weighted = 0;
  let weight = 0;
  for (let i = 0; i < gx.length; i++) {
    const g = gx[i];
    weight += g;
    if (g === 0) continue; // contributes Q·0
    // The reference's quirk: where the strengths are equal, the "relative strength" is gF itself, not 1.
    const relativeStrength = g > gf[i] ? gf[i] / g : g < gf[i] ? g / gf[i] : gf[i];
    const relativeAngle = 1 - Math.abs(ax[i] - af[i]) / (Math.PI / 2);
    const qg = TG / (1 + Math.exp(KG * (relativeStrength - DG)));
    const qa = TA / (1 + Math.exp(KA * (relativeAngle - DA)));
    weighted += qg * qa * g;
  }
  return [weighted, weight];
}

/** Qabf = Σ(Q_AF·gA + Q_BF·gB) / Σ(gA + gB). */
export function qabf(f: Plane, a: Plane, b: Plane, scale: QabfScale = 'bytes'): number {
  const edges = edgesAt[scale];
  const fEdges = edges(f);
  const [numA, denA] = preserved(edges(a), fEdges);
  const [numB, denB] = preserved(edges(b), fEdges);
  return (numA + numB) / (denA + denB);
}
