/**
 * Float64 references of the noisy top-k gate (src/kernels/gating.ts): Φ, the gate's selection, softmax, load,
 * importance and cv² loss, and the routing table built from its choices.
 */
import { refGateLinear } from './gate-linear.ts';

/** erf by its Taylor series (|x| ≤ 2.5, ~1e−14) and erfc by its continued fraction beyond. */
export function erfc64(x: number): number {
  if (Math.abs(x) <= 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x < 0) return 2 - erfc64(-x);
  let f = x;
  for (let n = 120; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/** The standard normal CDF Φ. */
export const phi64 = (z: number) => 0.5 * erfc64(-z / Math.SQRT2);

/** The squared coefficient of variation (unbiased variance / mean²), 0 for one value. */
export function cv2(v: number[]): number {
  if (v.length === 1) return 0;
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const vr = v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1);
  return vr / (m * m + 1e-10);
}

export interface GateRef {
  gates: number[];
  top: number[];
  load: number[];
  importance: number[];
  aux: number;
  /** Smallest gap between consecutive sorted logits of a row (selection stability). */
  gap: number;
}

/** The reference's noisy_top_k_gating + cv² loss in float64 (ties: lower index first). */
export function gateRef(x: ArrayLike<number>, wg: ArrayLike<number>, wn: ArrayLike<number>, noise: ArrayLike<number> | null, B: number, D: number, E: number, k: number, coef: number): GateRef {
  const clean = refGateLinear(x, wg, B, D, E);
  const rawN = refGateLinear(x, wn, B, D, E);
  const train = noise !== null;
  const sigma = Array.from(rawN, (r) => (r > 20 ? r : Math.log1p(Math.exp(r))) + 0.01);
  const logits = Array.from(clean, (c, i) => (train ? c + noise![i] * sigma[i] : c));
  const gates = new Array<number>(B * E).fill(0);
  const top: number[] = [];
  const load = new Array<number>(E).fill(0);
  let gap = Infinity;
  for (let b = 0; b < B; b++) {
    const row = logits.slice(b * E, b * E + E);
    const order = [...row.keys()].sort((i, j) => row[j] - row[i] || i - j);
    for (let r = 0; r + 1 < E; r++) gap = Math.min(gap, row[order[r]] - row[order[r + 1]]);
    const chosen = order.slice(0, k);
    top.push(...chosen);
    const m = row[chosen[0]];
    const z = chosen.reduce((s, e) => s + Math.exp(row[e] - m), 0);
    for (const e of chosen) gates[b * E + e] = Math.exp(row[e] - m) / z;
    if (train && k < E) {
      const tin = row[order[k]];
      const tout = row[order[k - 1]];
      for (let e = 0; e < E; e++) {
        const thr = row[e] > tin ? tin : tout;
        load[e] += phi64((clean[b * E + e] - thr) / sigma[b * E + e]);
      }
    } else for (let e = 0; e < E; e++) load[e] += gates[b * E + e] > 0 ? 1 : 0;
  }
  const importance = [...Array(E).keys()].map((e) => gates.filter((_, i) => i % E === e).reduce((a, v) => a + v, 0));
  return { gates, top, load, importance, aux: coef * (cv2(importance) + cv2(load)), gap };
}

/**
 * The routing table: [input sample, expert] for routed sample n = b·k + s of the top indices (B,k). The input is
 * b ('sample'), group(e)·B + b with E/groups experts per group ('expertGroup'), or n itself ('self').
 */
export function refRoutingTable(top: ArrayLike<number>, k: number, E: number, inputOf: 'sample' | 'expertGroup' | 'self' = 'sample', groups = 1): number[] {
  const B = top.length / k;
  const perGroup = E / groups;
  return Array.from(top).flatMap((e, n) => {
    const b = Math.floor(n / k);
    return [inputOf === 'self' ? n : inputOf === 'expertGroup' ? Math.floor(e / perGroup) * B + b : b, e];
  });
}
