/**
 * Expert-combine cases (src/kernels/combine.ts): log Σ_s g_s·exp y_s over each sample's chosen experts, k = 1..3,
 * forward and the gradients of the expert outputs and of the gates.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { backward } from '../../autograd/tape.ts';
import { combineExperts } from '../../ops/index.ts';
import type { Rng } from '../../util/rng.ts';
import { compareValues } from '../compare.ts';
import { combineGradRef, combineRef } from '../reference/combine.ts';
import { compareTensor, family, FORWARD_TOLERANCE, gradOf, GRADIENT_TOLERANCE, leaf, type CaseFlags, type Timing } from './family.ts';

/** B samples, each combining k of E experts' outputs of C×H×W. */
export interface CombineCase extends CaseFlags {
  B: number;
  E: number;
  k: number;
  C: number;
  H: number;
  W: number;
}

export const COMBINE_CASES: CombineCase[] = [
  { B: 3, E: 5, k: 2, C: 3, H: 7, W: 11, quick: true },
  { B: 1, E: 1, k: 1, C: 1, H: 1, W: 1, quick: true },
  { B: 2, E: 4, k: 3, C: 2, H: 13, W: 5, quick: true },
  { B: 4, E: 4, k: 2, C: 16, H: 9, W: 17, quick: true },
  { B: 3, E: 4, k: 2, C: 3, H: 7, W: 10, selftest: true },
];

/** k distinct random experts per sample. */
export function randomTop(B: number, E: number, k: number, rng: Rng): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const pool = [...Array(E).keys()];
    for (let s = 0; s < k; s++) out.push(pool.splice(rng.int(pool.length), 1)[0]);
  }
  return out;
}

/** Gates (B, E): positive for the chosen experts, 0 elsewhere. */
export function gatesFor(B: number, E: number, top: number[], k: number, rng: Rng): Float32Array {
  const g = new Float32Array(B * E);
  for (let b = 0; b < B; b++) for (let s = 0; s < k; s++) g[b * E + top[b * k + s]] = 0.05 + rng.next();
  return g;
}

/** Working size: one image's 2 of 4 experts, as MoE-Fusion's. */
const combineTiming: Timing<CombineCase> = {
  inputs: ({ B, E, k, C, H, W }, rng) => {
    const top = randomTop(B, E, k, rng);
    return [Tensor.fromArray(rng.uniform(B * k * C * H * W, -6, 6), [B * k, C, H, W]), Tensor.fromArray(gatesFor(B, E, top, k, rng), [B, E]), Tensor.fromArray(top, [B, k], 'u32')];
  },
  run: (_, [y, gates, top]) => combineExperts(y, gates, top),
  cost: (c) => ({ unit: 'byte', amount: 4 * (c.k + 1) * c.B * c.C * c.H * c.W }),
  working: (w, h) => [{ B: 1, E: 4, k: 2, C: 1, H: h, W: w }],
};

export const combineFamily = family('expert combine', 'single', 106, COMBINE_CASES, (c) => `B=${c.B} E=${c.E} k=${c.k} ${c.C}×${c.H}×${c.W}`, async (c, rng) => {
  const { B, E, k, C, H, W } = c;
  const P = C * H * W;
  const top = randomTop(B, E, k, rng);
  const gates = gatesFor(B, E, top, k, rng);
  const y = rng.uniform(B * k * P, -6, 6);
  const up = rng.uniform(B * P);
  const [yt, gt] = [leaf(y, [B * k, C, H, W]), leaf(gates, [B, E])];
  const idx = Tensor.fromArray(top, [B, k], 'u32');
  const out = combineTiming.run(c, [yt, gt, idx]) as Tensor;
  const want = combineRef(y, gates, top, B, E, k, P);
  const list = await compareTensor('log-sum-exp combine', out, [B, C, H, W], want.out, c.tol ?? FORWARD_TOLERANCE);
  const seed = Tensor.fromArray(up, out.shape);
  backward(out, seed);
  const { dy, dg } = combineGradRef(want, up, top, B, E, k, P);
  list.push(compareValues('gradient of the expert outputs', await gradOf(yt), dy, GRADIENT_TOLERANCE), compareValues('gradient of the gates', await gradOf(gt), dg, GRADIENT_TOLERANCE));
  for (const t of [out, seed, yt, gt, idx]) t.dispose();
  return list;
}, combineTiming);
