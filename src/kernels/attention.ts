/**
 * Fused scaled dot-product attention, FlashAttention-style.
 *
 * Forward: a workgroup owns BQ query rows (one invocation per row), walks the keys in blocks of BK rows staged in
 * workgroup memory and keeps a running max and sum (online softmax), so the Lq×Lk score matrix never exists.
 * It also writes the per-row log-sum-exp, from which the backward recomputes the probabilities.
 * Backward: dq by a kernel that owns query rows; dk and dv (sums over query rows) by a kernel that owns key rows.
 *
 * Scores below MASKED_BELOW (an additive −inf mask, or the causal mask) count as absent keys: a row without any
 * key left gives zeros. A finite mask such as −1e9 behaves as in PyTorch (a fully masked row averages the values).
 * The mask/causal variant and the head dimensions' array capacities are compile-time constants of the WGSL.
 */
import { engine } from '../graph/engine.ts';
import { Tensor } from '../graph/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { broadcastStrides } from './elementwise.ts';
import { grid1d, ceilDiv } from './wgsl.ts';

/** Rows owned by one workgroup (one invocation each). */
const ROWS = 64;
/** Rows of the other operand staged in workgroup memory at a time (16 × (128 + 128) floats = 16 KiB). */
const STAGE = 16;
/** Largest head dimension (D and Dv): private arrays of that size per invocation. */
export const MAX_HEAD_DIM = 128;

/**
 * Private and workgroup array size for a head dimension: the next power of two (at least 8), so that few
 * pipelines serve all sizes. Loops run to the actual size, a uniform. With constant trip counts lavapipe's
 * compiler unrolls them and took up to 15 s per kernel at D = 32 (cold cache), for kernels about 2× faster
 * there: compile time won, as every new shape pays it and tests use many shapes.
 */
function capacity(dim: number): number {
  return Math.max(8, 2 ** Math.ceil(Math.log2(dim)));
}

export interface AttentionConfig {
  /** Additive float mask broadcastable to (B, Hh, Lq, Lk). */
  mask?: Tensor | null;
  causal?: boolean;
  /** Multiplies q·k (default 1/√D). */
  scale?: number;
}

interface Dims {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
  Dv: number;
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null | undefined): Dims {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error(`attention: q, k, v must be (B, Hh, L, D), got [${q.shape}], [${k.shape}], [${v.shape}]`);
  const [B, H, Lq, D] = q.shape;
  const [Lk, Dv] = [k.shape[2], v.shape[3]];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D)
    throw new Error(`attention: k [${k.shape}] does not match q [${q.shape}] (same B, Hh and D)`);
  if (v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== Lk)
    throw new Error(`attention: v [${v.shape}] does not match k [${k.shape}] (same B, Hh and Lk)`);
  if (D < 1 || Dv < 1 || D > MAX_HEAD_DIM || Dv > MAX_HEAD_DIM)
    throw new LimitError(`attention: head dimensions D=${D}, Dv=${Dv} must lie in 1..${MAX_HEAD_DIM}`);
  if (mask) {
    const full = [B, H, Lq, Lk];
    const ok = mask.rank <= 4 && mask.shape.every((d, i) => d === 1 || d === full[4 - mask.rank + i]);
    if (!ok) throw new Error(`attention: mask [${mask.shape}] does not broadcast to (B, Hh, Lq, Lk) = [${full}]`);
  }
  const rt = engine().rt;
  for (const t of [q, k, v, mask]) if (t && t.bytes > rt.maxBinding) throw new LimitError(`attention: an operand of ${t.bytes} bytes exceeds one storage binding`);
  return { B, H, Lq, Lk, D, Dv };
}

/** Uniform params shared by the attention kernels (the mask strides are 0 on broadcast dimensions). */
function params(d: Dims, scale: number, blocks: number, mask: Tensor | null | undefined): Uint8Array {
  const ms = mask ? broadcastStrides(mask.shape, [d.B, d.H, d.Lq, d.Lk]) : [0, 0, 0, 0];
  return new Params().u32(d.B, d.H, d.Lq, d.Lk).f32(scale).u32(blocks, d.D, d.Dv).u32(...ms).bytes;
}

/** WGSL shared by the kernels: constants, the params struct and the additive bias of score (bh, i, j). */
function prelude(d: Dims, mask: boolean, causal: boolean): string {
  const maskTerm = mask ? ' + Mask[(bh / p.H) * p.ms.x + (bh % p.H) * p.ms.y + i * p.ms.z + j * p.ms.w]' : '';
  const causalTerm = causal ? 'if (j > i) { return ABSENT; }' : '';
  return /* wgsl */ `
const DCAP = ${capacity(d.D)}u;  // array sizes; the loops run to the actual p.hd, p.hdv
const DVCAP = ${capacity(d.Dv)}u;
const ROWS = ${ROWS}u;
const STAGE = ${STAGE}u;
const ABSENT = -3.0e38;       // score of a masked-out key, and the running max before any key
const MASKED_BELOW = -1.0e30; // scores below count as masked out (additive -inf masks)
struct P { B: u32, H: u32, Lq: u32, Lk: u32, scale: f32, blocks: u32, hd: u32, hdv: u32, ms: vec4u }
fn bias(bh: u32, i: u32, j: u32) -> f32 {
  ${causalTerm}
  return 0.0${maskTerm};
}`;
}

function maskBinding(mask: boolean, at: number): string {
  return mask ? `@group(0) @binding(${at}) var<storage, read> Mask: array<f32>;` : '';
}

function forwardCode(d: Dims, mask: boolean, causal: boolean): string {
  const n = mask ? 4 : 3;
  return /* wgsl */ `${prelude(d, mask, causal)}
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
${maskBinding(mask, 3)}
@group(0) @binding(${n}) var<storage, read_write> O: array<f32>;
@group(0) @binding(${n + 1}) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(${n + 2}) var<uniform> p: P;
var<workgroup> Ks: array<f32, STAGE * DCAP>;
var<workgroup> Vs: array<f32, STAGE * DVCAP>;
@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.blocks * p.B * p.H) { return; }
  let bh = w / p.blocks;
  let row0 = (w % p.blocks) * ROWS;
  let i = min(row0 + li, p.Lq - 1u); // rows past the end compute a copy of the last row and write nothing
  var q: array<f32, DCAP>;
  for (var d = 0u; d < p.hd; d++) { q[d] = Q[(bh * p.Lq + i) * p.hd + d] * p.scale; }
  var acc: array<f32, DVCAP>;
  var m = ABSENT;
  var l = 0.0;
  ${causal ? 'let keyEnd = min(p.Lk, row0 + ROWS); // later keys are masked for every row here' : 'let keyEnd = p.Lk;'}
  for (var k0 = 0u; k0 < keyEnd; k0 += STAGE) {
    let nk = min(STAGE, keyEnd - k0);
    workgroupBarrier();
    for (var t = li; t < nk * p.hd; t += ROWS) { Ks[t] = K[(bh * p.Lk + k0) * p.hd + t]; }
    for (var t = li; t < nk * p.hdv; t += ROWS) { Vs[t] = V[(bh * p.Lk + k0) * p.hdv + t]; }
    workgroupBarrier();
    var s: array<f32, STAGE>;
    var blockMax = m;
    for (var j = 0u; j < nk; j++) {
      var dot = 0.0;
      for (var d = 0u; d < p.hd; d++) { dot += q[d] * Ks[j * p.hd + d]; }
      s[j] = dot + bias(bh, i, k0 + j);
      if (s[j] > MASKED_BELOW) { blockMax = max(blockMax, s[j]); }
    }
    // Rescale what was accumulated under the old max once per block.
    let corr = exp(m - blockMax);
    l *= corr;
    for (var e = 0u; e < p.hdv; e++) { acc[e] *= corr; }
    for (var j = 0u; j < nk; j++) {
      let pj = select(0.0, exp(s[j] - blockMax), s[j] > MASKED_BELOW);
      l += pj;
      for (var e = 0u; e < p.hdv; e++) { acc[e] += pj * Vs[j * p.hdv + e]; }
    }
    m = blockMax;
  }
  if (row0 + li >= p.Lq) { return; }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var e = 0u; e < p.hdv; e++) { O[(bh * p.Lq + i) * p.hdv + e] = acc[e] * inv; }
  LSE[bh * p.Lq + i] = select(ABSENT, m + log(l), l > 0.0);
}`;
}

const DELTA_CODE = /* wgsl */ `
struct P { rows: u32, dv: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> O: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> Delta: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = (wid.x + wid.y * nwg.x) * 64u + li;
  if (r >= p.rows) { return; }
  var acc = 0.0;
  for (var e = 0u; e < p.dv; e++) { acc += O[r * p.dv + e] * G[r * p.dv + e]; }
  Delta[r] = acc;
}`;

/** dq: each invocation owns a query row and walks the key blocks (like the forward). */
function dqCode(d: Dims, mask: boolean, causal: boolean): string {
  const n = mask ? 4 : 3;
  return /* wgsl */ `${prelude(d, mask, causal)}
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
${maskBinding(mask, 3)}
@group(0) @binding(${n}) var<storage, read> G: array<f32>;
@group(0) @binding(${n + 1}) var<storage, read> LSE: array<f32>;
@group(0) @binding(${n + 2}) var<storage, read> Delta: array<f32>;
@group(0) @binding(${n + 3}) var<storage, read_write> DQ: array<f32>;
@group(0) @binding(${n + 4}) var<uniform> p: P;
var<workgroup> Ks: array<f32, STAGE * DCAP>;
var<workgroup> Vs: array<f32, STAGE * DVCAP>;
@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.blocks * p.B * p.H) { return; }
  let bh = w / p.blocks;
  let row0 = (w % p.blocks) * ROWS;
  let i = min(row0 + li, p.Lq - 1u);
  let r = bh * p.Lq + i;
  var q: array<f32, DCAP>;
  for (var d = 0u; d < p.hd; d++) { q[d] = Q[r * p.hd + d] * p.scale; }
  var g: array<f32, DVCAP>;
  for (var e = 0u; e < p.hdv; e++) { g[e] = G[r * p.hdv + e]; }
  let lse = LSE[r];
  let delta = Delta[r];
  var dq: array<f32, DCAP>;
  ${causal ? 'let keyEnd = min(p.Lk, row0 + ROWS);' : 'let keyEnd = p.Lk;'}
  for (var k0 = 0u; k0 < keyEnd; k0 += STAGE) {
    let nk = min(STAGE, keyEnd - k0);
    workgroupBarrier();
    for (var t = li; t < nk * p.hd; t += ROWS) { Ks[t] = K[(bh * p.Lk + k0) * p.hd + t]; }
    for (var t = li; t < nk * p.hdv; t += ROWS) { Vs[t] = V[(bh * p.Lk + k0) * p.hdv + t]; }
    workgroupBarrier();
    for (var j = 0u; j < nk; j++) {
      var s = 0.0;
      for (var d = 0u; d < p.hd; d++) { s += q[d] * Ks[j * p.hd + d]; }
      s += bias(bh, i, k0 + j);
      if (s <= MASKED_BELOW) { continue; }
      let prob = exp(s - lse);
      var dp = 0.0;
      for (var e = 0u; e < p.hdv; e++) { dp += g[e] * Vs[j * p.hdv + e]; }
      let ds = prob * (dp - delta);
      for (var d = 0u; d < p.hd; d++) { dq[d] += ds * Ks[j * p.hd + d]; }
    }
  }
  if (row0 + li >= p.Lq) { return; }
  for (var d = 0u; d < p.hd; d++) { DQ[r * p.hd + d] = dq[d] * p.scale; }
}`;
}

/** dk, dv: each invocation owns a key row and walks the query blocks, summing over query rows. */
function dkvCode(d: Dims, mask: boolean, causal: boolean): string {
  const n = mask ? 4 : 3;
  return /* wgsl */ `${prelude(d, mask, causal)}
@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
${maskBinding(mask, 3)}
@group(0) @binding(${n}) var<storage, read> G: array<f32>;
@group(0) @binding(${n + 1}) var<storage, read> LSE: array<f32>;
@group(0) @binding(${n + 2}) var<storage, read> Delta: array<f32>;
@group(0) @binding(${n + 3}) var<storage, read_write> DK: array<f32>;
@group(0) @binding(${n + 4}) var<storage, read_write> DVo: array<f32>;
@group(0) @binding(${n + 5}) var<uniform> p: P;
var<workgroup> Qs: array<f32, STAGE * DCAP>;
var<workgroup> Gs: array<f32, STAGE * DVCAP>;
var<workgroup> lses: array<f32, STAGE>;
var<workgroup> deltas: array<f32, STAGE>;
@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.blocks * p.B * p.H) { return; }
  let bh = w / p.blocks;
  let key0 = (w % p.blocks) * ROWS;
  let j = min(key0 + li, p.Lk - 1u);
  let c = bh * p.Lk + j;
  var k: array<f32, DCAP>;
  for (var d = 0u; d < p.hd; d++) { k[d] = K[c * p.hd + d]; }
  var v: array<f32, DVCAP>;
  for (var e = 0u; e < p.hdv; e++) { v[e] = V[c * p.hdv + e]; }
  var dk: array<f32, DCAP>;
  var dv: array<f32, DVCAP>;
  ${causal ? 'let queryStart = (key0 / STAGE) * STAGE; // earlier queries see none of these keys' : 'let queryStart = 0u;'}
  for (var i0 = queryStart; i0 < p.Lq; i0 += STAGE) {
    let nq = min(STAGE, p.Lq - i0);
    workgroupBarrier();
    for (var t = li; t < nq * p.hd; t += ROWS) { Qs[t] = Q[(bh * p.Lq + i0) * p.hd + t] * p.scale; }
    for (var t = li; t < nq * p.hdv; t += ROWS) { Gs[t] = G[(bh * p.Lq + i0) * p.hdv + t]; }
    if (li < nq) {
      lses[li] = LSE[bh * p.Lq + i0 + li];
      deltas[li] = Delta[bh * p.Lq + i0 + li];
    }
    workgroupBarrier();
    for (var r = 0u; r < nq; r++) {
      var s = 0.0;
      for (var d = 0u; d < p.hd; d++) { s += Qs[r * p.hd + d] * k[d]; }
      s += bias(bh, i0 + r, j);
      if (s <= MASKED_BELOW) { continue; }
      let prob = exp(s - lses[r]);
      var dp = 0.0;
      for (var e = 0u; e < p.hdv; e++) {
        dv[e] += prob * Gs[r * p.hdv + e];
        dp += Gs[r * p.hdv + e] * v[e];
      }
      let ds = prob * (dp - deltas[r]);
      for (var d = 0u; d < p.hd; d++) { dk[d] += ds * Qs[r * p.hd + d]; }
    }
  }
  if (key0 + li >= p.Lk) { return; }
  for (var d = 0u; d < p.hd; d++) { DK[c * p.hd + d] = dk[d]; }
  for (var e = 0u; e < p.hdv; e++) { DVo[c * p.hdv + e] = dv[e]; }
}`;
}

function resolveScale(d: Dims, scale: number | undefined): number {
  return scale ?? 1 / Math.sqrt(d.D);
}

/** Forward: returns the output (B, Hh, Lq, Dv) and the per-row log-sum-exp (B, Hh, Lq) for the backward. */
export function attentionForward(q: Tensor, k: Tensor, v: Tensor, cfg: AttentionConfig = {}): { out: Tensor; lse: Tensor } {
  const d = checkInputs(q, k, v, cfg.mask);
  const out = Tensor.empty([d.B, d.H, d.Lq, d.Dv]);
  const lse = Tensor.empty([d.B, d.H, d.Lq]);
  const blocks = ceilDiv(d.Lq, ROWS);
  if (out.size === 0) return { out, lse };
  const mask = cfg.mask ?? null;
  engine().rt.dispatch({
    label: 'attention',
    code: forwardCode(d, !!mask, !!cfg.causal),
    buffers: [q.buffer, k.buffer, v.buffer, ...(mask ? [mask.buffer] : []), out.buffer, lse.buffer],
    params: params(d, resolveScale(d, cfg.scale), blocks, mask),
    workgroups: grid1d(blocks * d.B * d.H),
  });
  return { out, lse };
}

/** Backward from the output gradient g: recomputes the probabilities from q, k and the saved log-sum-exp. */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  g: Tensor,
  cfg: AttentionConfig = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const d = checkInputs(q, k, v, cfg.mask);
  const rt = engine().rt;
  const dq = Tensor.empty(q.shape);
  const dk = Tensor.empty(k.shape);
  const dv = Tensor.empty(v.shape);
  const rows = d.B * d.H * d.Lq;
  if (rows === 0 || d.Lk === 0) {
    for (const t of [dq, dk, dv]) if (t.size) rt.clear(t.buffer, 0, t.bytes);
    return { dq, dk, dv };
  }
  // Delta_i = rowsum(dO ∘ O) = Σ_j P_ij dP_ij, the softmax backward's correction term.
  const delta = Tensor.empty([rows]);
  rt.dispatch({
    label: 'attention_delta',
    code: DELTA_CODE,
    buffers: [out.buffer, g.buffer, delta.buffer],
    params: new Params().u32(rows, d.Dv, 0, 0).bytes,
    workgroups: grid1d(ceilDiv(rows, 64)),
  });
  const mask = cfg.mask ?? null;
  const scale = resolveScale(d, cfg.scale);
  const inputs = [q.buffer, k.buffer, v.buffer, ...(mask ? [mask.buffer] : []), g.buffer, lse.buffer, delta.buffer];
  const qBlocks = ceilDiv(d.Lq, ROWS);
  rt.dispatch({
    label: 'attention_dq',
    code: dqCode(d, !!mask, !!cfg.causal),
    buffers: [...inputs, dq.buffer],
    params: params(d, scale, qBlocks, mask),
    workgroups: grid1d(qBlocks * d.B * d.H),
  });
  const kBlocks = ceilDiv(d.Lk, ROWS);
  rt.dispatch({
    label: 'attention_dkv',
    code: dkvCode(d, !!mask, !!cfg.causal),
    buffers: [...inputs, dk.buffer, dv.buffer],
    params: params(d, scale, kBlocks, mask),
    workgroups: grid1d(kBlocks * d.B * d.H),
  });
  delta.dispose();
  return { dq, dk, dv };
}
