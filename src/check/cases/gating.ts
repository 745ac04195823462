/**
 * Gate cases: the split-K linear map (src/kernels/gate-linear.ts) forward and backward, at the gate's long D and
 * under a binding limit that cuts its partial sums; the noisy top-k gate (src/kernels/gating.ts) in inference and in
 * training with fixed noise, k = 1..E: its choice of experts, gates, load, importance and cv² loss.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { engine, noGrad, tidy } from '../../tensor/engine.ts';
import { backward } from '../../autograd/tape.ts';
import { gateLinear, noisyTopKGate } from '../../ops/index.ts';
import type { Rng } from '../../util/rng.ts';
import { compareExact, compareValues } from '../compare.ts';
import { refGateLinear, refGateLinearGrads } from '../reference/gate-linear.ts';
import { gateRef } from '../reference/gating.ts';
import { compareTensor, family, FORWARD_TOLERANCE, gradOf, GRADIENT_TOLERANCE, leaf, type CaseFlags, type Timing } from './family.ts';

/** x (B, D) · w (D, E); `binding`: storage bindings of this many bytes at most. */
export interface GateLinearCase extends CaseFlags {
  B: number;
  D: number;
  E: number;
  binding?: number;
}

export const GATE_LINEAR_CASES: GateLinearCase[] = [
  { B: 3, D: 1001, E: 5, quick: true, selftest: true },
  { B: 1, D: 1, E: 1 },
  { B: 4, D: 70001, E: 4, quick: true },
  { B: 5, D: 2049, E: 3 },
  { B: 2, D: 3001, E: 13, quick: true },
  { B: 1, D: 7, E: 13 },
  { B: 3, D: 41, E: 5, quick: true },
  // 384 KiB bindings: x (164 KB) and w (328 KB) fit, the 2 parts of 20·40·64 partials (410 KB) would not.
  { B: 20, D: 2049, E: 40, binding: 384 * 1024 },
];

export const gateLinearFamily = family('gate linear map', 'single', 111, GATE_LINEAR_CASES, (c) => `${c.B}×${c.D}·${c.D}×${c.E}${c.binding ? ` in ${c.binding / 1024} KiB bindings` : ''}`, async (c, rng) => {
  const { B, D, E } = c;
  const x = rng.uniform(B * D);
  const w = rng.uniform(D * E);
  const g = rng.uniform(B * E);
  const rt = engine().rt;
  if (c.binding) rt.bindingLimitForTests = c.binding;
  try {
    const [xt, wt] = [leaf(x, [B, D]), leaf(w, [D, E])];
    const out = gateLinear(xt, wt);
    const list = await compareTensor('x·w', out, [B, E], refGateLinear(x, w, B, D, E), c.tol ?? FORWARD_TOLERANCE);
    const seed = Tensor.fromArray(g, [B, E]);
    backward(out, seed);
    const want = refGateLinearGrads(x, w, g, B, D, E);
    list.push(compareValues('dx = g·wᵀ', await gradOf(xt), want.dx, GRADIENT_TOLERANCE), compareValues('dw = xᵀ·g', await gradOf(wt), want.dw, GRADIENT_TOLERANCE));
    for (const t of [xt, wt, out, seed]) t.dispose();
    return list;
  } finally {
    if (c.binding) rt.bindingLimitForTests = null;
  }
});

export interface GateCase extends CaseFlags {
  B: number;
  D: number;
  E: number;
  k: number;
  train: boolean;
  /** The load-balancing loss's coefficient. */
  coef: number;
}

export const GATE_CASES: GateCase[] = [
  // Inference, then training (with noise): k = 1 … E of 5 experts, 4 experts as MoE-Fusion's, one expert.
  ...[false, true].flatMap((train) => [
    ...[1, 2, 3, 5].map((k) => ({ B: 3, D: 1001, E: 5, k, train, coef: 0.01, quick: k === 2 })),
    { B: 4, D: 614, E: 4, k: 2, train, coef: 0.02 },
    ...(train ? [{ B: 4, D: 614, E: 4, k: 3, train, coef: 0.01, quick: true }] : []),
    { B: 2, D: 7, E: 1, k: 1, train, coef: 1, quick: !train },
  ]),
  { B: 3, D: 3001, E: 4, k: 2, train: false, coef: 0.02, selftest: true },
  { B: 3, D: 3001, E: 4, k: 2, train: true, coef: 0.02, selftest: true },
  { B: 1, D: 160 * 60 * 80, E: 4, k: 2, train: true, coef: 0.02, bench: 'only' }, // the global gate's grid
];

const gateTiming: Timing<GateCase> = {
  inputs: (c, rng) => [Tensor.fromArray(rng.uniform(c.B * c.D), [c.B, c.D]), ...[0, 1].map(() => Tensor.fromArray(rng.uniform(c.D * c.E, -0.1, 0.1), [c.D, c.E])), Tensor.fromArray(rng.normal(c.B * c.E), [c.B, c.E])],
  run: (c, [x, wg, wn, noise]) => Object.values(noisyTopKGate(x, wg, wn, { k: c.k, train: c.train, lossCoef: c.coef, noise: c.train ? noise : undefined })),
  cost: (c) => ({ unit: 'byte', amount: 4 * c.B * c.D * (2 * c.E + 1) }),
};

/** Random inputs whose logits are well apart, so that float32 rounding cannot change the choice of experts. */
export function gateInputs(c: GateCase, rng: Rng) {
  for (;;) {
    const x = rng.uniform(c.B * c.D);
    const wg = rng.uniform(c.D * c.E, -0.1, 0.1);
    const wn = rng.uniform(c.D * c.E, -0.1, 0.1);
    const noise = c.train ? rng.normal(c.B * c.E) : null;
    const want = gateRef(x, wg, wn, noise, c.B, c.D, c.E, c.k, c.coef);
    if (want.gap > 0.05) return { x, wg, wn, noise, want };
  }
}

export const gateFamily = family('noisy top-k gate', 'single', 105, GATE_CASES, (c) => `${c.train ? 'training (noise)' : 'inference'} B=${c.B} D=${c.D} E=${c.E} k=${c.k}`, async (c, rng) => {
  const { B, D, E, k } = c;
  const { x, wg, wn, noise, want } = gateInputs(c, rng);
  const r = noGrad(() =>
    tidy(() => noisyTopKGate(Tensor.fromArray(x, [B, D]), Tensor.fromArray(wg, [D, E]), Tensor.fromArray(wn, [D, E]), { k, train: c.train, lossCoef: c.coef, noise: noise ? Tensor.fromArray(noise, [B, E]) : undefined })),
  );
  const tol = c.tol ?? GRADIENT_TOLERANCE;
  const list = [
    compareExact('experts (u32)', [...(r.topIndices.dtype === 'u32' ? await r.topIndices.u32() : [])], want.top),
    compareValues('gates', await r.gates.data(), want.gates, tol),
    compareValues('load', await r.load.data(), want.load, tol),
    compareValues('importance', await r.importance.data(), want.importance, tol),
    // The cv² loss divides by squared means: 1e-3 of it, or 1e-8 where it is 0 (one expert).
    ...(await compareTensor('aux loss', r.auxLoss, [], [want.aux], 1e-3, 1e-5)),
  ];
  for (const t of Object.values(r)) t.dispose();
  return list;
}, gateTiming);
