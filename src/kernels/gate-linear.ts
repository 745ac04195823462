/**
 * The gate's linear map (B,D)·(D,E) for a huge D (614,400 or 768,000 in MoE-Fusion), a tiny E (4) and B (1-4):
 * a split-K reduction. Each workgroup sums one slice of D for a block of batch rows (so every weight is read
 * once per block, not once per row) and writes one partial per output; a second pass sums the partials.
 * The backward products are elementwise-cheap (E terms per output element) and get dedicated kernels.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { sumKernel } from './reduce.ts';
import { grid1d, ceilDiv } from './wgsl.ts';

const WG = 64;
/** Elements of D per workgroup at least: 16 loads per invocation keeps the partials few. */
const MIN_SLICE = WG * 16;
const MAX_PARTS = 4096;
export const MAX_GATE_EXPERTS = 64;

/** Batch rows per workgroup: as many as keep the per-invocation accumulators at 64 values. */
function rowsPerWorkgroup(E: number): number {
  return Math.max(1, Math.min(4, Math.floor(64 / E)));
}

function forwardCode(E: number, rows: number): string {
  const nv = rows * E;
  return /* wgsl */ `
const E = ${E}u;
const ROWS = ${rows}u;
const NV = ${nv}u;
struct P { B: u32, D: u32, slice: u32, parts: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> red: array<f32, ${WG * nv}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let part = wid.x;
  let b0 = wid.y * ROWS;
  let d0 = part * p.slice;
  let d1 = min(p.D, d0 + p.slice);
  var acc: array<f32, NV>;
  for (var d = d0 + li; d < d1; d += ${WG}u) {
    var wv: array<f32, E>;
    for (var e = 0u; e < E; e++) { wv[e] = W[d * E + e]; }
    for (var r = 0u; r < ROWS; r++) {
      if (b0 + r < p.B) {
        let xv = X[(b0 + r) * p.D + d];
        for (var e = 0u; e < E; e++) { acc[r * E + e] += xv * wv[e]; }
      }
    }
  }
  for (var v = 0u; v < NV; v++) { red[v * ${WG}u + li] = acc[v]; }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var v = 0u; v < NV; v++) { red[v * ${WG}u + li] += red[v * ${WG}u + li + s]; }
    }
    workgroupBarrier();
  }
  if (li < NV) {
    let b = b0 + li / E;
    if (b < p.B) { O[(b * E + li % E) * p.parts + part] = red[li * ${WG}u]; }
  }
}`;
}

function checkOperands(x: Tensor, w: Tensor): [number, number, number] {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[0])
    throw new Error(`gateLinear: needs x (B,D) and w (D,E), got [${x.shape}] and [${w.shape}]`);
  const [B, D] = x.shape;
  const E = w.shape[1];
  if (E > MAX_GATE_EXPERTS) throw new Error(`gateLinear: at most ${MAX_GATE_EXPERTS} experts, got ${E}`);
  const max = engine().rt.maxBinding;
  if (x.bytes > max || w.bytes > max) throw new LimitError(`gateLinear: x [${x.shape}] or w [${w.shape}] exceeds one storage binding`);
  return [B, D, E];
}

/** x (B,D) · w (D,E) → (B,E). */
export function gateLinearKernel(x: Tensor, w: Tensor): Tensor {
  const [B, D, E] = checkOperands(x, w);
  if (B === 0 || E === 0 || D === 0) return Tensor.zeros([B, E]);
  const parts = Math.min(MAX_PARTS, Math.max(1, Math.floor(D / MIN_SLICE)));
  const slice = ceilDiv(ceilDiv(D, parts), WG) * WG;
  const used = ceilDiv(D, slice);
  const rows = rowsPerWorkgroup(E);
  const partial = Tensor.empty([B, E, used]);
  engine().rt.dispatch({
    label: 'gate_linear',
    code: forwardCode(E, rows),
    buffers: [x.buffer, w.buffer, partial.buffer],
    params: new Params().u32(B, D, slice, used).bytes,
    workgroups: [used, ceilDiv(B, rows), 1],
  });
  const out = sumKernel(partial, [2]);
  partial.dispose();
  return out;
}

// Backward: one invocation per d, the E weights (or the E gradient sums) of a row of w in registers.
function gradXCode(E: number): string {
  return /* wgsl */ `
const E = ${E}u;
struct P { B: u32, D: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let d = (wid.x + wid.y * nwg.x) * 256u + li;
  if (d >= p.D) { return; }
  var wv: array<f32, E>;
  for (var e = 0u; e < E; e++) { wv[e] = W[d * E + e]; }
  for (var b = 0u; b < p.B; b++) {
    var s = 0.0;
    for (var e = 0u; e < E; e++) { s += G[b * E + e] * wv[e]; }
    O[b * p.D + d] = s;
  }
}`;
}

function gradWCode(E: number): string {
  return /* wgsl */ `
const E = ${E}u;
struct P { B: u32, D: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let d = (wid.x + wid.y * nwg.x) * 256u + li;
  if (d >= p.D) { return; }
  var acc: array<f32, E>;
  for (var b = 0u; b < p.B; b++) {
    let xv = X[b * p.D + d];
    for (var e = 0u; e < E; e++) { acc[e] += xv * G[b * E + e]; }
  }
  for (var e = 0u; e < E; e++) { O[d * E + e] = acc[e]; }
}`;
}

/** dx = g · wᵀ: (B,E) and (D,E) → (B,D). */
export function gateLinearGradX(g: Tensor, w: Tensor): Tensor {
  const [D, E] = w.shape;
  const B = g.shape[0];
  const out = Tensor.empty([B, D]);
  if (out.bytes > engine().rt.maxBinding) throw new LimitError(`gateLinear backward: dx [${B}, ${D}] exceeds one storage binding`);
  engine().rt.dispatch({
    label: 'gate_linear_grad_x',
    code: gradXCode(E),
    buffers: [g.buffer, w.buffer, out.buffer],
    params: new Params().u32(B, D, 0, 0).bytes,
    workgroups: grid1d(ceilDiv(D, 256)),
  });
  return out;
}

/** dw = xᵀ · g: (B,D) and (B,E) → (D,E). */
export function gateLinearGradW(x: Tensor, g: Tensor): Tensor {
  const [B, D] = x.shape;
  const E = g.shape[1];
  const out = Tensor.empty([D, E]);
  engine().rt.dispatch({
    label: 'gate_linear_grad_w',
    code: gradWCode(E),
    buffers: [x.buffer, g.buffer, out.buffer],
    params: new Params().u32(B, D, 0, 0).bytes,
    workgroups: grid1d(ceilDiv(D, 256)),
  });
  return out;
}
