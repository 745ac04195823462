/**
 * The log-sum-exp combination of the chosen experts' outputs (the reference's SparseDispatcher.combine):
 * out[b] = log Σ_s g[b, idx[b,s]]·exp(y[b·k+s]), computed as m + log Σ_s g·exp(y − m) with m = max_s y.
 * The reference sums in float32 and replaces an exact zero sum by eps = 2.22e−16 before the log; here a sum
 * that would underflow float32 (below 2^−150, where the reference's sum rounds to zero) or that has only zero
 * gates gives log(eps) too, and no gradient, as the reference's in-place replacement.
 * y can exceed one storage binding (8 outputs of 16×480×640 are 157 MB): the work runs per batch row b and
 * per range of pixels, each dispatch binding the window of y that holds its k inputs.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { sumKernel } from './reduce.ts';
import { grid1d, ceilDiv } from './wgsl.ts';

const WG = 256;
/** Pixels per workgroup in the backward (4 per invocation): the unit of its partial sums. */
const BLOCK = WG * 4;
export const MAX_COMBINE_K = 8;
export const LOG_EPS = Math.log(2.220446049250313e-16);
/** log(2^−150): below it a float32 sum of g·exp(y) rounds to zero. */
const LOG_UNDERFLOW = -150 * Math.LN2;

/** Alignment of storage-binding offsets, in f32 elements. */
const ALIGN = 64;

/** A binding that starts at or before element `start` on an aligned offset, and the shift of `start` inside it. */
function windowOf(t: Tensor, start: number, count: number): { range: BufferRange; shift: number } {
  const base = Math.floor(start / ALIGN) * ALIGN;
  return { range: t.binding(base, start + count - base), shift: start - base };
}

/** Shared WGSL: the stabilised sum over the k outputs of one pixel. */
function lseCode(k: number): string {
  return /* wgsl */ `
const K = ${k}u;
const LOG_EPS = ${LOG_EPS};
const LOG_UNDERFLOW = ${LOG_UNDERFLOW};
struct P { pix: u32, E: u32, b: u32, count: u32, yShift: u32, oShift: u32, part0: u32, parts: u32 }
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

function forwardCode(k: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> T: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
${lseCode(k)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.count) { return; }
  var gs = gatesOf(p.b);
  var ys: array<f32, K>;
  for (var s = 0u; s < K; s++) { ys[s] = Y[p.yShift + s * p.pix + i]; }
  let r = lse(&ys, &gs);
  O[p.oShift + i] = select(LOG_EPS, r.m + log(r.s), r.ok);
}`;
}

function backwardCode(k: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> DO: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read> T: array<u32>;
@group(0) @binding(4) var<storage, read_write> DY: array<f32>;
@group(0) @binding(5) var<storage, read_write> PART: array<f32>;
@group(0) @binding(6) var<uniform> p: P;
${lseCode(k)}
var<workgroup> red: array<f32, ${WG * k}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
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
  if (li < K && w < (p.count + ${BLOCK - 1}u) / ${BLOCK}u) { PART[(p.b * K + li) * p.parts + p.part0 + w] = red[li * ${WG}u]; }
}`;
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
  const maxElems = Math.floor(engine().rt.maxBinding / 4);
  const room = Math.floor((maxElems - ALIGN - (s.k - 1) * s.P) / unit) * unit;
  if (room <= 0) throw new LimitError(`combineExperts: ${s.k} expert outputs of ${s.P} elements do not fit one storage binding`);
  for (let p0 = 0; p0 < s.P; p0 += room) fn(p0, Math.min(room, s.P - p0));
}

/** (B·k, ...) expert outputs → (B, ...). */
export function combineKernel(y: Tensor, gates: Tensor, topIndices: Tensor): Tensor {
  const s = checkShapes(y, gates, topIndices);
  const out = Tensor.empty([s.B, ...y.shape.slice(1)]);
  const code = forwardCode(s.k);
  for (let b = 0; b < s.B; b++)
    forEachRange(s, 1, (p0, count) => {
      const yw = windowOf(y, b * s.k * s.P + p0, (s.k - 1) * s.P + count);
      const ow = windowOf(out, b * s.P + p0, count);
      engine().rt.dispatch({
        label: 'combine_experts',
        code,
        buffers: [yw.range, gates.buffer, topIndices.buffer, ow.range],
        params: new Params().u32(s.P, s.E, b, count, yw.shift, ow.shift, 0, 0).bytes,
        workgroups: grid1d(ceilDiv(count, WG)),
      });
    });
  return out;
}

/** Gradients of y (B·k, ...) and of the gates (B,E), given that of the output (B, ...). */
export function combineBackwardKernel(dOut: Tensor, y: Tensor, gates: Tensor, topIndices: Tensor): [Tensor, Tensor] {
  const s = checkShapes(y, gates, topIndices);
  const dy = Tensor.empty(y.shape);
  const parts = ceilDiv(s.P, BLOCK);
  const partial = Tensor.empty([s.B * s.k, parts]);
  const code = backwardCode(s.k);
  for (let b = 0; b < s.B; b++)
    forEachRange(s, BLOCK, (p0, count) => {
      const start = b * s.k * s.P + p0;
      const span = (s.k - 1) * s.P + count;
      const yw = windowOf(y, start, span);
      const dyw = windowOf(dy, start, span);
      const ow = windowOf(dOut, b * s.P + p0, count);
      engine().rt.dispatch({
        label: 'combine_experts_grad',
        code,
        buffers: [yw.range, ow.range, gates.buffer, topIndices.buffer, dyw.range, partial.buffer],
        params: new Params().u32(s.P, s.E, b, count, yw.shift, ow.shift, p0 / BLOCK, parts).bytes,
        workgroups: grid1d(ceilDiv(count, BLOCK)),
      });
    });
  const perSlot = sumKernel(partial, [1]);
  partial.dispose();
  const dGates = scatterGateGrads(perSlot, topIndices, s);
  perSlot.dispose();
  return [dy, dGates];
}

const SCATTER = /* wgsl */ `
struct P { B: u32, E: u32, k: u32, _a: u32 }
@group(0) @binding(0) var<storage, read> V: array<f32>;
@group(0) @binding(1) var<storage, read> T: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.B * p.E) { return; }
  let b = i / p.E;
  let e = i % p.E;
  var g = 0.0;
  for (var s = 0u; s < p.k; s++) { if (T[b * p.k + s] == e) { g += V[b * p.k + s]; } }
  O[i] = g;
}`;

/** (B·k) values, one per chosen expert slot → (B,E), zero for experts not chosen. */
function scatterGateGrads(perSlot: Tensor, topIndices: Tensor, s: Shape): Tensor {
  const out = Tensor.empty([s.B, s.E]);
  engine().rt.dispatch({
    label: 'combine_gate_grad',
    code: SCATTER,
    buffers: [perSlot.buffer, topIndices.buffer, out.buffer],
    params: new Params().u32(s.B, s.E, s.k, 0).bytes,
    workgroups: [ceilDiv(s.B * s.E, 64)],
  });
  return out;
}
