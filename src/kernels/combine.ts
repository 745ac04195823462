/**
 * The log-sum-exp combination of the chosen experts' outputs (the reference's SparseDispatcher.combine):
 * out[b] = log Σ_s g[b, idx[b,s]]·exp(y[b·k+s]), computed as m + log Σ_s g·exp(y − m) with m = max_s y.
 * The reference sums in float32 and replaces an exact zero sum by eps = 2.22e−16 before the log; here a sum
 * that would underflow float32 (below 2^−150, where the reference's sum rounds to zero) or that has only zero
 * gates gives log(eps) too, and no gradient, as the reference's in-place replacement.
 * y can exceed one storage binding (8 outputs of 16×480×640 are 157 MB): the work runs per batch row b and
 * per range of pixels, each dispatch binding the window of y that holds its k inputs.
 */
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { sumKernel } from './reduce.ts';
import { alignedRange, bindableElements, ceilDiv, flatGrid, Program, program, type ProgramSpec } from './program.ts';

const WG = 256;
/** Pixels per workgroup in the backward (4 per invocation): the unit of its partial sums. */
const BLOCK = WG * 4;
export const MAX_COMBINE_K = 8;
export const LOG_EPS = Math.log(2.220446049250313e-16);
/** log(2^−150): below it a float32 sum of g·exp(y) rounds to zero. */
export const LOG_UNDERFLOW = -150 * Math.LN2;

/** Shared WGSL: the stabilised sum over the k outputs of one pixel. */
function lseCode(k: number): string {
  return /* wgsl */ `
const K = ${k}u;
const LOG_EPS = ${LOG_EPS};
const LOG_UNDERFLOW = ${LOG_UNDERFLOW};
struct Lse { m: f32, s: f32, ok: bool }
// ys: the k values of one pixel, replaced by exp(y − max); returns max, Σ g·exp(y − max), and whether the sum
// is representable.
fn lse(ys: ptr<function, array<f32, K>>, gs: ptr<function, array<f32, K>>) -> Lse {
  var r: Lse;
  r.m = (*ys)[0];
  for (var s = 1u; s < K; s++) { r.m = max(r.m, (*ys)[s]); }
  for (var s = 0u; s < K; s++) {
    (*ys)[s] = exp((*ys)[s] - r.m);
    r.s += (*gs)[s] * (*ys)[s];
  }
  r.ok = r.s > 0.0 && r.m + log(r.s) >= LOG_UNDERFLOW;
  return r;
}
fn gatesOf(b: u32) -> array<f32, K> {
  var gs: array<f32, K>;
  for (var s = 0u; s < K; s++) { gs[s] = G[b * p.E + T[b * K + s]]; }
  return gs;
}`;
}

const UNIFORMS = { pix: 'u32', E: 'u32', b: 'u32', count: 'u32', yShift: 'u32', oShift: 'u32', part0: 'u32', parts: 'u32' } as const;

function forwardProgram(k: number): Program {
  return program(`combine_experts ${k}`, () => forwardProgramSpec(k));
}

function forwardProgramSpec(k: number): ProgramSpec {
  return {
    name: 'combine_experts',
    inputs: { Y: 'f32', G: 'f32', T: 'u32' },
    outputs: { O: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: WG,
    flat: true,
    header: lseCode(k),
    body: /* wgsl */ `if (i >= p.count) { return; }
  var gs = gatesOf(p.b);
  var ys: array<f32, K>;
  for (var s = 0u; s < K; s++) { ys[s] = Y[p.yShift + s * p.pix + i]; }
  let r = lse(&ys, &gs);
  O[p.oShift + i] = select(LOG_EPS, r.m + log(r.s), r.ok);`,
  };
}

function gradProgram(k: number): Program {
  return program(`combine_experts_grad ${k}`, () => gradProgramSpec(k));
}

function gradProgramSpec(k: number): ProgramSpec {
  return {
    name: 'combine_experts_grad',
    inputs: { Y: 'f32', DO: 'f32', G: 'f32', T: 'u32' },
    outputs: { DY: 'f32', PART: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: WG,
    header: `${lseCode(k)}\nvar<workgroup> red: array<f32, ${WG * k}>;`,
    body: /* wgsl */ `let w = wid.x + wid.y * nwg.x;
  var gs = gatesOf(p.b);
  var acc: array<f32, K>;  // Σ over pixels of dOut·exp(y_s − m)/S: the gradient of gate s
  for (var j = 0u; j < 4u; j++) {
    let i = w * ${BLOCK}u + j * ${WG}u + li;
    if (i < p.count) {
      var ys: array<f32, K>;
      for (var s = 0u; s < K; s++) { ys[s] = Y[p.yShift + s * p.pix + i]; }
      let r = lse(&ys, &gs);
      let d = select(0.0, DO[p.oShift + i] / r.s, r.ok);
      for (var s = 0u; s < K; s++) {
        let a = d * ys[s];
        acc[s] += a;
        DY[p.yShift + s * p.pix + i] = a * gs[s];
      }
    }
  }
  for (var s = 0u; s < K; s++) { red[s * ${WG}u + li] = acc[s]; }
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {
    if (li < h) {
      for (var s = 0u; s < K; s++) { red[s * ${WG}u + li] += red[s * ${WG}u + li + h]; }
    }
    workgroupBarrier();
  }
  if (li < K && w < (p.count + ${BLOCK - 1}u) / ${BLOCK}u) { PART[(p.b * K + li) * p.parts + p.part0 + w] = red[li * ${WG}u]; }`,
  };
}

interface Shape {
  B: number;
  k: number;
  E: number;
  /** Elements per sample (C·H·W). */
  P: number;
}

function checkShapes(y: Tensor, gates: Tensor, topIndices: Tensor): Shape {
  if (gates.rank !== 2 || topIndices.rank !== 2 || topIndices.dtype !== 'u32' || gates.shape[0] !== topIndices.shape[0])
    throw new Error(`combineExperts: needs gates (B,E) and u32 top indices (B,k), got [${gates.shape}] and ${topIndices}`);
  const [B, E] = gates.shape;
  const k = topIndices.shape[1];
  if (y.rank < 1 || y.shape[0] !== B * k) throw new Error(`combineExperts: y [${y.shape}] needs ${B}·${k} samples`);
  if (k < 1 || k > MAX_COMBINE_K) throw new Error(`combineExperts: k must be in 1..${MAX_COMBINE_K}, got ${k}`);
  return { B, k, E, P: y.size / (B * k) };
}

/**
 * Splits one batch row's pixels into ranges whose k inputs fit one binding; `unit` divides every range start.
 * fn(p0, count) per range.
 */
function forEachRange(s: Shape, unit: number, fn: (p0: number, count: number) => void): void {
  const room = Math.floor((bindableElements() - (s.k - 1) * s.P) / unit) * unit;
  if (room <= 0) throw new LimitError(`combineExperts: ${s.k} expert outputs of ${s.P} elements do not fit one storage binding`);
  for (let p0 = 0; p0 < s.P; p0 += room) fn(p0, Math.min(room, s.P - p0));
}

/** (B·k, ...) expert outputs → (B, ...). */
export function combineKernel(y: Tensor, gates: Tensor, topIndices: Tensor): Tensor {
  const s = checkShapes(y, gates, topIndices);
  const out = Tensor.empty([s.B, ...y.shape.slice(1)]);
  const prog = forwardProgram(s.k);
  for (let b = 0; b < s.B; b++)
    forEachRange(s, 1, (p0, count) => {
      const yw = alignedRange(y, b * s.k * s.P + p0, (s.k - 1) * s.P + count);
      const ow = alignedRange(out, b * s.P + p0, count);
      prog.dispatchFlat(
        count,
        { Y: yw.range, G: gates, T: topIndices, O: ow.range },
        { pix: s.P, E: s.E, b, count, yShift: yw.base, oShift: ow.base },
      );
    });
  return out;
}

/** Gradients of y (B·k, ...) and of the gates (B,E), given that of the output (B, ...). */
export function combineGradKernel(dOut: Tensor, y: Tensor, gates: Tensor, topIndices: Tensor): [Tensor, Tensor] {
  const s = checkShapes(y, gates, topIndices);
  const dy = Tensor.empty(y.shape);
  const parts = ceilDiv(s.P, BLOCK);
  const partial = Tensor.empty([s.B * s.k, parts]);
  const prog = gradProgram(s.k);
  for (let b = 0; b < s.B; b++)
    forEachRange(s, BLOCK, (p0, count) => {
      const start = b * s.k * s.P + p0;
      const span = (s.k - 1) * s.P + count;
      const yw = alignedRange(y, start, span);
      const dyw = alignedRange(dy, start, span);
      const ow = alignedRange(dOut, b * s.P + p0, count);
      prog.dispatch(
        { Y: yw.range, DO: ow.range, G: gates, T: topIndices, DY: dyw.range, PART: partial },
        { pix: s.P, E: s.E, b, count, yShift: yw.base, oShift: ow.base, part0: p0 / BLOCK, parts },
        flatGrid(ceilDiv(count, BLOCK)),
      );
    });
  const perSlot = sumKernel(partial, [1]);
  partial.dispose();
  const dGates = scatterGateGrads(perSlot, topIndices, s);
  perSlot.dispose();
  return [dy, dGates];
}

const scatterProgram = new Program({
  name: 'combine_gate_grad',
  inputs: { V: 'f32', T: 'u32' },
  outputs: { O: 'f32' },
  uniforms: { B: 'u32', E: 'u32', k: 'u32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `if (i >= p.B * p.E) { return; }
  let b = i / p.E;
  let e = i % p.E;
  var g = 0.0;
  for (var s = 0u; s < p.k; s++) { if (T[b * p.k + s] == e) { g += V[b * p.k + s]; } }
  O[i] = g;`,
});

/** (B·k) values, one per chosen expert slot → (B,E), zero for experts not chosen. */
function scatterGateGrads(perSlot: Tensor, topIndices: Tensor, s: Shape): Tensor {
  const out = Tensor.empty([s.B, s.E]);
  scatterProgram.dispatchFlat(s.B * s.E, { V: perSlot, T: topIndices, O: out }, { B: s.B, E: s.E, k: s.k });
  return out;
}
