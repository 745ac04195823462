/**
 * The noisy top-k gate of Shazeer et al. (2017) after its two linear maps, as the PyTorch MoE layer that
 * MoE-Fusion uses computes it: noisy logits, top-(k+1) selection, softmax over the top k, the load (a smooth
 * probability of being in the top k while training with noise, else a count), the importance and the
 * cv² load-balancing loss; and the backward of all of it. B and E are tiny, so one workgroup does a whole
 * batch: one invocation per row for the selection, one per expert for the sums over the batch.
 *
 * Layouts shared by the forward and the backward:
 * - state (f32): clean logits (B,E), then while training the raw noise logits x·W_noise (B,E) and the N(0,1)
 *   samples ε (B,E);
 * - stats (f32, 2E+1): load (E), importance (E), aux loss;
 * - rank (u32, B,E): each expert's position in its row's descending order (ties: lower index first).
 */
import { Tensor } from '../tensor/tensor.ts';
import { Program, type StorageType, program, type ProgramSpec } from './program.ts';

const WG = 64;
export const MAX_EXPERTS = 64;

/**
 * Φ, the standard normal CDF, and its density, in f32, with absolute error below 1e−7 on the whole line.
 * |x| < 1 (x = z/√2): erf by its Taylor series (12 terms, alternating, no cancellation at this range).
 * Beyond: erfc(x) = t·exp(−x² + c(t)) with t = 1/(1 + x/2) and c a degree-9 polynomial (the Chebyshev-fitted
 * form of Numerical Recipes, fractional error < 1.2e−7 for all x). exp(−x²) = exp(−z²/2) is split as
 * exp(−h²/2)·exp(−(z−h)(z+h)/2) with h = z rounded to 1/16, and exp(−h²/2) = 2^(−a·L1)·2^(−a·L2), a = h²/2,
 * log2(e) = L1 + L2 with L1 of 11 bits, so that a and a·L1 are exact in f32 and the far tail keeps its
 * relative accuracy.
 */
export const NORMAL_WGSL = /* wgsl */ `
fn erf_series(x: f32) -> f32 {
  let y = x * x;
  var s = 0.0;
  var c = array<f32, 12>(1.0, -0.333333333333, 0.1, -0.0238095238095, 0.00462962962963, -0.000757575757576,
    0.000106837606838, -0.0000132275132275, 0.00000145891690009, -1.45038522232e-7, 1.31225329638e-8, -1.0892221037e-9);
  for (var n = 11; n >= 0; n--) { s = s * y + c[n]; }
  return 1.1283791670955126 * x * s;
}
// erfc(|z|/√2) for |z| ≥ √2; the Gaussian factor exp(−z²/2) is taken from z itself, since rounding z/√2 to f32
// would cost a relative error of z²·6e−8 in the tail.
fn erfc_big(az: f32) -> f32 {
  // Beyond |z| = 14.5 the tail is below f32's smallest subnormal; the split exponent below would also overflow
  // (0·∞ = NaN) once |z| is in the thousands, which untrained gates reach.
  if (az > 14.5) { return 0.0; }
  let x = az * 0.70710678118654752;
  let t = 1.0 / (1.0 + 0.5 * x);
  let c = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let h = round(az * 16.0) / 16.0;
  let h2 = 0.5 * h * h;
  return t * exp2(-h2 * 1.4423828125) * exp2(-h2 * 3.1222838896e-4) * exp(c - 0.5 * (az - h) * (az + h));
}
fn normal_cdf(z: f32) -> f32 {
  let x = z * 0.70710678118654752;
  if (abs(x) < 1.0) { return 0.5 + 0.5 * erf_series(x); }
  let q = 0.5 * erfc_big(abs(z));
  return select(1.0 - q, q, z < 0.0);
}
fn normal_pdf(z: f32) -> f32 {
  return 0.39894228040143268 * exp(-0.5 * z * z);
}`;

const normalCdfProgram = new Program({
  name: 'normal_cdf',
  inputs: { X: 'f32' },
  outputs: { O: 'f32' },
  uniforms: { n: 'u32' },
  workgroupSize: 256,
  flat: true,
  header: NORMAL_WGSL,
  body: 'if (i < p.n) { O[i] = normal_cdf(X[i]); }',
});

/** Φ(x) elementwise (exposed for testing the approximation). */
export function normalCdfKernel(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  normalCdfProgram.dispatchFlat(x.size, { X: x, O: out }, { n: x.size });
  return out;
}

export interface GateConfig {
  experts: number;
  k: number;
  /** Noisy logits (training): the state holds raw noise logits and ε. */
  train: boolean;
}

/** The load is the smooth probability only while training with noise and k < E (as in the reference). */
export function smoothLoad(c: GateConfig): boolean {
  return c.train && c.k < c.experts;
}

function stateCode(c: GateConfig): string {
  return /* wgsl */ `
fn clean(b: u32, e: u32) -> f32 { return S[b * E + e]; }
${
  c.train
    ? `fn raw(b: u32, e: u32) -> f32 { return S[(p.B + b) * E + e]; }
fn eps(b: u32, e: u32) -> f32 { return S[(2u * p.B + b) * E + e]; }
// softplus as torch computes it (linear above 20), plus the reference's noise_epsilon 0.01.
fn sigma(b: u32, e: u32) -> f32 {
  let r = raw(b, e);
  return select(max(r, 0.0) + log(1.0 + exp(-abs(r))), r, r > 20.0) + 0.01;
}
fn logit(b: u32, e: u32) -> f32 { return clean(b, e) + eps(b, e) * sigma(b, e); }`
    : `fn logit(b: u32, e: u32) -> f32 { return clean(b, e); }`
}
// The (k+1)-th and k-th largest logits of row b (ranks k and k−1), and the experts holding them.
struct Thresholds { tin: f32, tout: f32, jin: u32, jout: u32 }
fn thresholds(b: u32) -> Thresholds {
  var t: Thresholds;
  for (var e = 0u; e < E; e++) {
    let r = R[b * E + e];
    if (r == K) { t.tin = logit(b, e); t.jin = e; }
    if (r + 1u == K) { t.tout = logit(b, e); t.jout = e; }
  }
  return t;
}
`;
}

/**
 * WGSL shared by forward and backward: the logits, the noise scale and the load thresholds of a row (these read
 * the state, which the backward binds only while training), and cv² with its gradient.
 */
function commonCode(c: GateConfig, withState: boolean): string {
  return /* wgsl */ `
const E = ${c.experts}u;
const K = ${c.k}u;
${withState ? stateCode(c) : ''}
fn cv2(v: ptr<function, array<f32, E>>) -> f32 {
  if (E == 1u) { return 0.0; }
  var m = 0.0;
  for (var e = 0u; e < E; e++) { m += (*v)[e]; }
  m /= f32(E);
  var s = 0.0;
  for (var e = 0u; e < E; e++) { s += ((*v)[e] - m) * ((*v)[e] - m); }
  return s / f32(E - 1u) / (m * m + 1e-10);
}
// d cv²(v) / dv into g.
fn cv2_grad(v: ptr<function, array<f32, E>>, g: ptr<function, array<f32, E>>) {
  if (E == 1u) { return; }
  var m = 0.0;
  for (var e = 0u; e < E; e++) { m += (*v)[e]; }
  m /= f32(E);
  var s = 0.0;
  for (var e = 0u; e < E; e++) { s += ((*v)[e] - m) * ((*v)[e] - m); }
  let vr = s / f32(E - 1u);
  let den = m * m + 1e-10;
  for (var e = 0u; e < E; e++) {
    (*g)[e] = 2.0 * ((*v)[e] - m) / f32(E - 1u) / den - vr * 2.0 * m / f32(E) / (den * den);
  }
}`;
}

const UNIFORMS = { B: 'u32', coef: 'f32' } as const;

function forwardProgram(c: GateConfig): Program {
  return program(`noisy_top_k_gate ${c.experts} ${c.k} ${c.train}`, () => forwardProgramSpec(c));
}

function forwardProgramSpec(c: GateConfig): ProgramSpec {
  return {
    name: 'noisy_top_k_gate',
    inputs: { S: 'f32' },
    outputs: { G: 'f32', T: 'u32', R: 'u32', ST: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: WG,
    header: `${NORMAL_WGSL}\n${commonCode(c, true)}`,
    body: /* wgsl */ `for (var b = li; b < p.B; b += ${WG}u) {
    var l: array<f32, E>;
    for (var e = 0u; e < E; e++) { l[e] = logit(b, e); }
    var top = 0u;
    for (var e = 0u; e < E; e++) {
      var r = 0u;
      for (var j = 0u; j < E; j++) { if (l[j] > l[e] || (l[j] == l[e] && j < e)) { r++; } }
      R[b * E + e] = r;
      if (r < K) { T[b * K + r] = e; }
      if (r == 0u) { top = e; }
    }
    var z = 0.0;
    for (var e = 0u; e < E; e++) { if (R[b * E + e] < K) { z += exp(l[e] - l[top]); } }
    for (var e = 0u; e < E; e++) { G[b * E + e] = select(0.0, exp(l[e] - l[top]) / z, R[b * E + e] < K); }
  }
  storageBarrier();
  if (li < E) {
    var imp = 0.0;
    var load = 0.0;
    for (var b = 0u; b < p.B; b++) {
      let g = G[b * E + li];
      imp += g;
${
  smoothLoad(c)
    ? `      let t = thresholds(b);
      let thr = select(t.tout, t.tin, logit(b, li) > t.tin);
      load += normal_cdf((clean(b, li) - thr) / sigma(b, li));`
    : `      load += select(0.0, 1.0, g > 0.0);`
}
    }
    ST[li] = load;
    ST[E + li] = imp;
  }
  storageBarrier();
  if (li == 0u) {
    var load: array<f32, E>;
    var imp: array<f32, E>;
    for (var e = 0u; e < E; e++) { load[e] = ST[e]; imp[e] = ST[E + e]; }
    ST[2u * E] = p.coef * (cv2(&imp) + cv2(&load));
  }`,
  };
}

function gradProgram(c: GateConfig): Program {
  return program(`noisy_top_k_gate_grad ${c.experts} ${c.k} ${c.train}`, () => gradProgramSpec(c));
}

function gradProgramSpec(c: GateConfig): ProgramSpec {
  const smooth = smoothLoad(c);
  // The state only while training (the clean logits do not enter the inference backward).
  const state: Record<string, StorageType> = c.train ? { S: 'f32' } : {};
  return {
    name: 'noisy_top_k_gate_grad',
    inputs: { ...state, G: 'f32', R: 'u32', ST: 'f32', DG: 'f32', DST: 'f32' },
    outputs: { O: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: WG,
    header: /* wgsl */ `${NORMAL_WGSL}
${commonCode(c, c.train)}
// Total gradients of the importance and the load, the aux loss's share included.
var<workgroup> dImp: array<f32, E>;
var<workgroup> dLoad: array<f32, E>;`,
    body: /* wgsl */ `if (li == 0u) {
    var load: array<f32, E>;
    var imp: array<f32, E>;
    var gl: array<f32, E>;
    var gi: array<f32, E>;
    for (var e = 0u; e < E; e++) { load[e] = ST[e]; imp[e] = ST[E + e]; }
    cv2_grad(&load, &gl);
    cv2_grad(&imp, &gi);
    let da = DST[2u * E] * p.coef;
    for (var e = 0u; e < E; e++) {
      dImp[e] = DST[E + e] + da * gi[e];
      dLoad[e] = DST[e] + da * gl[e];
    }
  }
  workgroupBarrier();
  for (var b = li; b < p.B; b += ${WG}u) {
    var dl: array<f32, E>;  // d/d logits
    var dc: array<f32, E>;  // d/d clean logits (besides through the logits)
    var ds: array<f32, E>;  // d/d sigma (besides through the logits)
    // Softmax over the top k.
    var dot = 0.0;
    for (var e = 0u; e < E; e++) { dot += G[b * E + e] * (DG[b * E + e] + dImp[e]); }
    for (var e = 0u; e < E; e++) {
      if (R[b * E + e] < K) { dl[e] = G[b * E + e] * (DG[b * E + e] + dImp[e] - dot); }
    }
${
  smooth
    ? `    // load = Σ_b Φ((clean − threshold)/σ): the threshold is another expert's noisy logit.
    let t = thresholds(b);
    for (var e = 0u; e < E; e++) {
      let isIn = logit(b, e) > t.tin;
      let thr = select(t.tout, t.tin, isIn);
      let s = sigma(b, e);
      let z = (clean(b, e) - thr) / s;
      let dz = normal_pdf(z) * dLoad[e] / s;
      dc[e] += dz;
      ds[e] -= dz * z;
      if (isIn) { dl[t.jin] -= dz; } else { dl[t.jout] -= dz; }
    }`
    : ''
}
    for (var e = 0u; e < E; e++) {
      O[b * E + e] = dc[e] + dl[e];
${
  c.train
    ? `      let r = raw(b, e);
      let dsig = ds[e] + dl[e] * eps(b, e);
      O[(p.B + b) * E + e] = select(dsig / (1.0 + exp(-r)), dsig, r > 20.0);`
    : ''
}
    }
  }`,
  };
}

export interface GateForward {
  gates: Tensor;
  topIndices: Tensor;
  rank: Tensor;
  stats: Tensor;
}

/** Runs the gate head on `state` (see the layout above) for a batch of B rows. */
export function noisyTopKGateKernel(state: Tensor, B: number, c: GateConfig, lossCoef: number): GateForward {
  const E = c.experts;
  const gates = Tensor.empty([B, E]);
  const topIndices = Tensor.empty([B, c.k], 'u32');
  const rank = Tensor.empty([B, E], 'u32');
  const stats = Tensor.empty([2 * E + 1]);
  forwardProgram(c).dispatch({ S: state, G: gates, T: topIndices, R: rank, ST: stats }, { B, coef: lossCoef }, [1]);
  return { gates, topIndices, rank, stats };
}

/**
 * Gradients of the clean logits and (training) of the raw noise logits, stacked as (1 or 2, B, E), given those
 * of the gates (B,E) and of the stats (2E+1).
 */
export function noisyTopKGateGradKernel(state: Tensor, fwd: Pick<GateForward, 'gates' | 'rank' | 'stats'>, dGates: Tensor, dStats: Tensor, B: number, c: GateConfig, lossCoef: number): Tensor {
  const out = Tensor.zeros([c.train ? 2 : 1, B, c.experts]);
  const bindings = { ...(c.train ? { S: state } : {}), G: fwd.gates, R: fwd.rank, ST: fwd.stats, DG: dGates, DST: dStats, O: out };
  gradProgram(c).dispatch(bindings, { B, coef: lossCoef }, [1]);
  return out;
}

const routingProgram = new Program({
  name: 'routing_table',
  inputs: { T: 'u32' },
  outputs: { O: 'u32' },
  uniforms: { n: 'u32', k: 'u32', B: 'u32', mode: 'u32', perGroup: 'u32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `let n = i;
  if (n >= p.n) { return; }
  let e = T[n];
  let b = n / p.k;
  var input = b;
  if (p.mode == 1u) { input = (e / p.perGroup) * p.B + b; }
  if (p.mode == 2u) { input = n; }
  O[2u * n] = input;
  O[2u * n + 1u] = e;`,
});

export type RoutingMode = 'sample' | 'expertGroup' | 'self';

/** Rows [input sample, expert] for each routed sample n = b·k + s (see routingTable in ops/gating.ts). */
export function routingTableKernel(topIndices: Tensor, mode: RoutingMode, expertsPerGroup: number): Tensor {
  const [B, k] = topIndices.shape;
  const out = Tensor.empty([B * k, 2], 'u32');
  const modeId = { sample: 0, expertGroup: 1, self: 2 }[mode];
  const uniforms = { n: B * k, k, B, mode: modeId, perGroup: Math.max(1, expertsPerGroup) };
  routingProgram.dispatchFlat(B * k, { T: topIndices, O: out }, uniforms);
  return out;
}
