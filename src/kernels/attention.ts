/**
 * Fused scaled dot-product attention, FlashAttention-style.
 *
 * Forward: an invocation owns a query row, walks the keys in blocks and keeps a running max and sum (online
 * softmax), so the Lq×Lk score matrix never exists. It also writes the per-row log-sum-exp, from which the
 * backward recomputes the probabilities.
 * Backward: dq by a kernel that owns query rows; dk and dv (sums over query rows) by a kernel that owns key rows.
 *
 * Two implementations of each kernel:
 * - With subgroups (head dimensions ≤ 64): a lane keeps its own row as vec4 registers (head dimensions are
 *   compile-time chunk counts), and the streamed rows (keys and values, or queries and output gradients) are
 *   loaded by the 8 lanes of a subgroup together, each lane a different part, and shared with subgroupBroadcast.
 *   On lavapipe, where a load whose address is the same for all lanes still costs 8 scalar loads, this replaces
 *   a workgroup-memory load per multiply-add by a vec4 load per 32 (and a broadcast per 4). See "Subgroup kernels".
 * - Without (and for larger heads): a workgroup stages blocks of the streamed rows in workgroup memory and every
 *   invocation reads them from there; the head dimensions are loop bounds.
 *
 * Scores below MASKED_BELOW (an additive −inf mask, or the causal mask) count as absent keys: a row without any
 * key left gives zeros. A finite mask such as −1e9 behaves as in PyTorch (a fully masked row averages the values).
 * The mask/causal variant and the head dimensions' array capacities are compile-time constants of the WGSL.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { broadcastStrides } from './elementwise.ts';
import { type Binding, ceilDiv, flatGrid, Program, type StorageType, type UniformType, program, type ProgramSpec } from './program.ts';
import { subgroupSize, type KernelVariant } from './variant.ts';

/** Rows owned by one workgroup (one invocation each). */
const ROWS = 64;
/** Rows of the other operand staged in workgroup memory at a time (16 × (128 + 128) floats = 16 KiB). */
const STAGE = 16;
/** Largest head dimension (D and Dv): private arrays of that size per invocation. */
export const MAX_HEAD_DIM = 128;

/**
 * Private and workgroup array size for a head dimension: the next power of two (at least 8), so that few
 * pipelines serve all sizes. Loops run to the actual size, a uniform: with constant trip counts lavapipe's
 * compiler unrolls them, and the faster kernels were not worth their far longer compiles, which every new shape
 * pays.
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
  /** The kernel variant (default: the engine's). */
  variant?: KernelVariant;
}

/** Batch, heads, query and key counts, head dimensions of queries/keys and of values. */
export interface Dims {
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

/** Uniforms of the attention kernels: sizes, the scale, workgroups per (batch, head), head dimensions, mask strides. */
const UNIFORMS: Record<string, UniformType> = {
  B: 'u32', H: 'u32', Lq: 'u32', Lk: 'u32', scale: 'f32', blocks: 'u32', hd: 'u32', hdv: 'u32', ms: 'vec4u',
};

/** The uniform values (the mask strides are 0 on broadcast dimensions). */
function uniforms(d: Dims, scale: number, blocks: number, mask: Tensor | null | undefined) {
  const ms = mask ? broadcastStrides(mask.shape, [d.B, d.H, d.Lq, d.Lk]) : [0, 0, 0, 0];
  return { B: d.B, H: d.H, Lq: d.Lq, Lk: d.Lk, scale, blocks, hd: d.D, hdv: d.Dv, ms };
}

/** The shader key of an attention kernel: what its WGSL depends on (array capacities, subgroup chunks, mask, causal). */
function attentionKey(name: string, d: Dims, mask: boolean, causal: boolean, sg: boolean): string {
  const dims = [capacity(d.D), capacity(d.Dv), ...(sg ? ['subgroups', chunks(d.D), chunks(d.Dv), d.D % 4 === 0, d.Dv % 4 === 0] : [])];
  return `${name} ${dims.join(' ')}${mask ? ' mask' : ''}${causal ? ' causal' : ''}`;
}

/** WGSL shared by the kernels: constants and the additive bias of score (bh, i, j). */
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
fn bias(bh: u32, i: u32, j: u32) -> f32 {
  ${causalTerm}
  return 0.0${maskTerm};
}`;
}

/** The bindings q, k, v and (when masked) the mask, of element type `t` for q and k and `tv` for v. */
function qkvInputs(mask: boolean, t: StorageType = 'f32', tv: StorageType = 'f32'): Record<string, StorageType> {
  return { Q: t, K: t, V: tv, ...(mask ? { Mask: 'f32' as const } : {}) };
}

function forwardProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention', d, mask, causal, false), () => forwardProgramSpec(d, mask, causal));
}

function forwardProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  return {
    name: 'attention',
    inputs: qkvInputs(mask),
    outputs: { O: 'f32', LSE: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: ROWS,
    header: /* wgsl */ `${prelude(d, mask, causal)}
var<workgroup> Ks: array<f32, STAGE * DCAP>;
var<workgroup> Vs: array<f32, STAGE * DVCAP>;`,
    body: /* wgsl */ `
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
  LSE[bh * p.Lq + i] = select(ABSENT, m + log(l), l > 0.0);`,
  };
}

/** Delta_i = rowsum(dO ∘ O), one invocation per row. */
const deltaProgram = new Program({
  name: 'attention_delta',
  inputs: { O: 'f32', G: 'f32' },
  outputs: { Delta: 'f32' },
  uniforms: { rows: 'u32', dv: 'u32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `
  if (i >= p.rows) { return; }
  var acc = 0.0;
  for (var e = 0u; e < p.dv; e++) { acc += O[i * p.dv + e] * G[i * p.dv + e]; }
  Delta[i] = acc;`,
});

/** dq: each invocation owns a query row and walks the key blocks (like the forward). */
function dqProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention_dq', d, mask, causal, false), () => dqProgramSpec(d, mask, causal));
}

function dqProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  return {
    name: 'attention_dq',
    inputs: { ...qkvInputs(mask), G: 'f32', LSE: 'f32', Delta: 'f32' },
    outputs: { DQ: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: ROWS,
    header: /* wgsl */ `${prelude(d, mask, causal)}
var<workgroup> Ks: array<f32, STAGE * DCAP>;
var<workgroup> Vs: array<f32, STAGE * DVCAP>;`,
    body: /* wgsl */ `
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
  for (var d = 0u; d < p.hd; d++) { DQ[r * p.hd + d] = dq[d] * p.scale; }`,
  };
}

/** dk, dv: each invocation owns a key row and walks the query blocks, summing over query rows. */
function dkvProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention_dkv', d, mask, causal, false), () => dkvProgramSpec(d, mask, causal));
}

function dkvProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  return {
    name: 'attention_dkv',
    inputs: { ...qkvInputs(mask), G: 'f32', LSE: 'f32', Delta: 'f32' },
    outputs: { DK: 'f32', DVo: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: ROWS,
    header: /* wgsl */ `${prelude(d, mask, causal)}
var<workgroup> Qs: array<f32, STAGE * DCAP>;
var<workgroup> Gs: array<f32, STAGE * DVCAP>;
var<workgroup> lses: array<f32, STAGE>;
var<workgroup> deltas: array<f32, STAGE>;`,
    body: /* wgsl */ `
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
  for (var e = 0u; e < p.hdv; e++) { DVo[c * p.hdv + e] = dv[e]; }`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Subgroup kernels. A lane owns a row (a query row in the forward and dq, a key row in dk/dv) and keeps it in
// registers as vec4 chunks; the other operand streams past in blocks of KB rows. The 8 lanes of a subgroup load
// a block together, each lane a different part of it (vec4 loads where the head dimension allows), and
// subgroupBroadcast(chunk, lane) hands every part to every lane. So each load serves 8 lanes, and no load in the
// hot loop has an address shared by all lanes (which lavapipe emits as 8 scalar loads). Head dimensions are
// compile-time chunk counts (padded to a multiple of 8 floats, the padding loaded as zeros), so that every chunk
// is a named register, never an array indexed at run time. Control flow stays uniform around the broadcasts:
// out-of-range rows are clamped and their scores masked with select.
// ---------------------------------------------------------------------------------------------------------------

/** Rows per workgroup of the subgroup kernels (each lane one row). At the bench shape 32 and 128 were no faster. */
const SG_ROWS = 64;
/** Largest head dimension (D and Dv) of the subgroup kernels. */
const SG_MAX_HEAD_DIM = 64;

/** vec4 chunks holding a head dimension, padded to a multiple of 8 floats so that few pipelines serve all sizes. */
function chunks(dim: number): number {
  return 2 * Math.ceil(dim / 8);
}

/**
 * Streamed rows per block (KB): 8 / KB lanes share a streamed row, each loading 1 / (8 / KB) of its chunks. The
 * unrolled code grows with KB and lavapipe's compile time faster still; fewer rows per block also spill less and
 * ran no slower. So the smallest KB whose 8 / KB parts divide both chunk counts.
 */
function blockRows(nc: number, ncv: number): number {
  for (const kb of [1, 2]) if (nc % (8 / kb) === 0 && ncv % (8 / kb) === 0) return kb;
  return 4; // chunk counts are even
}

/**
 * Whether the subgroup kernels run: subgroups available and head dimensions up to 64. A lane keeps its row's
 * chunks and accumulators in registers; at larger heads they spill so much that the kernels take many seconds to
 * compile, so those use the portable kernels.
 */
function useSubgroups(d: Dims, v?: KernelVariant): boolean {
  return subgroupSize(v) > 0 && Math.max(d.D, d.Dv) <= SG_MAX_HEAD_DIM;
}

/** n generated lines (or terms) joined by `sep`. */
function rep(n: number, f: (i: number) => string, sep = '\n  '): string {
  return Array.from({ length: n }, (_, i) => f(i)).join(sep);
}

/**
 * `fn ld<name>(r, c) -> vec4f` of a row-major (rows × dim) operand: chunk c (floats 4c..4c+3) of row r, zero past
 * the row's end. `v4` (dim % 4 == 0; the operand bound as vec4s, see rowType): one vec4 load; otherwise four
 * guarded scalar loads.
 */
function rowLoad(name: string, v4: boolean, dim: string): string {
  if (v4)
    return /* wgsl */ `fn ld${name}(r: u32, c: u32) -> vec4f {
  let n4 = ${dim} / 4u;
  return select(vec4f(0.0), ${name}[r * n4 + min(c, n4 - 1u)], c < n4);
}`;
  const x = (t: number) => `select(0.0, ${name}[r * ${dim} + min(4u * c + ${t}u, ${dim} - 1u)], 4u * c + ${t}u < ${dim})`;
  return /* wgsl */ `fn ld${name}(r: u32, c: u32) -> vec4f {
  return vec4f(${rep(4, x, ', ')});
}`;
}

/** Element type of a row operand or output: vec4s when its row length is a multiple of 4. */
function rowType(v4: boolean): StorageType {
  return v4 ? 'vec4f' : 'f32';
}

/** Stores the chunks `acc0..` (times `factor`) of row r of an output of row length `dim` (vec4 stores when `v4`). */
function rowStore(name: string, v4: boolean, dim: string, n: number, acc: string, factor: string): string {
  if (v4) return rep(n, (c) => `if (${c}u < ${dim} / 4u) { ${name}[r * (${dim} / 4u) + ${c}u] = ${acc}${c} * ${factor}; }`);
  return rep(n, (c) => rep(4, (t) => `if (${4 * c + t}u < ${dim}) { ${name}[r * ${dim} + ${4 * c + t}u] = ${acc}${c}[${t}] * ${factor}; }`, ' '));
}

/** Layout of a streamed block: KB rows, each split over 8 / KB lanes. */
class Block {
  readonly parts: number;
  constructor(readonly kb: number) {
    this.parts = 8 / kb;
  }
  /** This lane's row of the block and which part of it (WGSL, from sid). */
  get lane(): string {
    return `let t = sid % ${this.kb}u; let h = (sid % 8u) / ${this.kb}u;`;
  }
  /** Loads this lane's part of streamed row `row` of operand `op` (n chunks) into `${name}0..`. */
  load(op: string, name: string, n: number, row: string, then = ''): string {
    const per = n / this.parts;
    return rep(per, (c) => `let ${name}${c} = ld${op}(${row}, h * ${per}u + ${c}u)${then};`, ' ');
  }
  /** Chunk c of block row t, from the lane holding it. */
  bc(name: string, n: number, t: number, c: number): string {
    const per = n / this.parts;
    return `subgroupBroadcast(${name}${c % per}, ${t + this.kb * Math.floor(c / per)}u)`;
  }
  /** A per-row scalar that every lane loads for its row: row t's value, from lane t. */
  bcScalar(name: string, t: number): string {
    return `subgroupBroadcast(${name}, ${t}u)`;
  }
}

/** Shared WGSL of the subgroup kernels: the prelude, and the score of (i, j) with bias, masked to ABSENT. */
function sgPrelude(d: Dims, mask: boolean, causal: boolean): string {
  return /* wgsl */ `${prelude(d, mask, causal)}
// x (= scaled q·k) plus the bias; ABSENT when masked out or (i, j) lies outside the matrix (clamped rows).
fn score(x: f32, bh: u32, i: u32, j: u32) -> f32 {
  let s = x + bias(bh, min(i, p.Lq - 1u), min(j, p.Lk - 1u));
  return select(ABSENT, s, s > MASKED_BELOW && i < p.Lq && j < p.Lk);
}`;
}

/** The start of the subgroup kernels' body: the workgroup's (batch, head) and first row. */
const SG_START = /* wgsl */ `
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.blocks * p.B * p.H) { return; }
  let bh = w / p.blocks;
  let row0 = (w % p.blocks) * ${SG_ROWS}u;`;

function sgForwardProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention', d, mask, causal, true), () => sgForwardProgramSpec(d, mask, causal));
}

function sgForwardProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  const [nc, ncv] = [chunks(d.D), chunks(d.Dv)];
  const [v4, v4v] = [d.D % 4 === 0, d.Dv % 4 === 0];
  const b = new Block(blockRows(nc, ncv));
  const KB = b.kb;
  const scores = rep(KB, (t) => `let s${t} = score(${rep(nc, (c) => `dot(q${c}, ${b.bc('kc', nc, t, c)})`, ' + ')}, bh, i, k0 + ${t}u);`, '\n    ');
  const accumulate = rep(KB, (t) => rep(ncv, (e) => `a${e} += p${t} * ${b.bc('vc', ncv, t, e)};`, ' '), '\n    ');
  return {
    name: 'attention',
    inputs: qkvInputs(mask, rowType(v4), rowType(v4v)),
    outputs: { O: rowType(v4v), LSE: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: SG_ROWS,
    enables: ['subgroups'],
    header: /* wgsl */ `${sgPrelude(d, mask, causal)}
${rowLoad('Q', v4, 'p.hd')}
${rowLoad('K', v4, 'p.hd')}
${rowLoad('V', v4v, 'p.hdv')}`,
    body: /* wgsl */ `${SG_START}
  let i = min(row0 + li, p.Lq - 1u); // rows past the end compute a copy of the last row and write nothing
  let r = bh * p.Lq + i;
  ${rep(nc, (c) => `let q${c} = ldQ(r, ${c}u) * p.scale;`, ' ')}
  ${rep(ncv, (e) => `var a${e} = vec4f(0.0);`, ' ')}
  var m = ABSENT;
  var l = 0.0;
  ${b.lane}
  ${causal ? `let keyEnd = min(p.Lk, row0 + ${SG_ROWS}u); // later keys are masked for every row here` : 'let keyEnd = p.Lk;'}
  for (var k0 = 0u; k0 < keyEnd; k0 += ${KB}u) {
    let kr = bh * p.Lk + min(k0 + t, p.Lk - 1u);
    ${b.load('K', 'kc', nc, 'kr')}
    ${b.load('V', 'vc', ncv, 'kr')}
    ${scores}
    let mNew = ${Array.from({ length: KB }, (_, t) => `s${t}`).reduce((acc, x) => `max(${acc}, ${x})`, 'm')};
    // Online softmax: rescale what was accumulated under the old max, once per block.
    let corr = exp(m - mNew);
    m = mNew;
    ${rep(KB, (t) => `let p${t} = select(0.0, exp(s${t} - m), s${t} > MASKED_BELOW);`, ' ')}
    l = l * corr + ${rep(KB, (t) => `p${t}`, ' + ')};
    ${rep(ncv, (e) => `a${e} *= corr;`, ' ')}
    ${accumulate}
  }
  if (row0 + li >= p.Lq) { return; }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  ${rowStore('O', v4v, 'p.hdv', ncv, 'a', 'inv')}
  LSE[r] = select(ABSENT, m + log(l), l > 0.0);`,
  };
}

/** The inputs of both backward kernels (q, k, v, the mask, g, lse and delta) and the row loads of q, k, v and g. */
function sgBackwardInputs(v4: boolean, v4v: boolean, mask: boolean): { inputs: Record<string, StorageType>; loads: string } {
  return {
    inputs: { ...qkvInputs(mask, rowType(v4), rowType(v4v)), G: rowType(v4v), LSE: 'f32', Delta: 'f32' },
    loads: `${rowLoad('Q', v4, 'p.hd')}
${rowLoad('K', v4, 'p.hd')}
${rowLoad('V', v4v, 'p.hdv')}
${rowLoad('G', v4v, 'p.hdv')}`,
  };
}

/** dq, subgroup version: a lane owns a query row; key (and value) rows stream past. */
function sgDqProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention_dq', d, mask, causal, true), () => sgDqProgramSpec(d, mask, causal));
}

function sgDqProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  const [nc, ncv] = [chunks(d.D), chunks(d.Dv)];
  const [v4, v4v] = [d.D % 4 === 0, d.Dv % 4 === 0];
  const b = new Block(blockRows(nc, ncv));
  const perKey = rep(b.kb, (t) => `{
      ${rep(nc, (c) => `let kb${c} = ${b.bc('kc', nc, t, c)};`, ' ')}
      let s = score(${rep(nc, (c) => `dot(q${c}, kb${c})`, ' + ')}, bh, i, k0 + ${t}u);
      let dp = ${rep(ncv, (e) => `dot(g${e}, ${b.bc('vc', ncv, t, e)})`, ' + ')};
      let ds = select(0.0, exp(s - lse) * (dp - delta), s > MASKED_BELOW);
      ${rep(nc, (c) => `dq${c} += ds * kb${c};`, ' ')}
    }`, '\n    ');
  const { inputs, loads } = sgBackwardInputs(v4, v4v, mask);
  return {
    name: 'attention_dq',
    inputs,
    outputs: { DQ: rowType(v4) },
    uniforms: UNIFORMS,
    workgroupSize: SG_ROWS,
    enables: ['subgroups'],
    header: `${sgPrelude(d, mask, causal)}\n${loads}`,
    body: /* wgsl */ `${SG_START}
  let i = min(row0 + li, p.Lq - 1u);
  let r = bh * p.Lq + i;
  ${rep(nc, (c) => `let q${c} = ldQ(r, ${c}u) * p.scale;`, ' ')}
  ${rep(ncv, (e) => `let g${e} = ldG(r, ${e}u);`, ' ')}
  let lse = LSE[r];
  let delta = Delta[r];
  ${rep(nc, (c) => `var dq${c} = vec4f(0.0);`, ' ')}
  ${b.lane}
  ${causal ? `let keyEnd = min(p.Lk, row0 + ${SG_ROWS}u);` : 'let keyEnd = p.Lk;'}
  for (var k0 = 0u; k0 < keyEnd; k0 += ${b.kb}u) {
    let kr = bh * p.Lk + min(k0 + t, p.Lk - 1u);
    ${b.load('K', 'kc', nc, 'kr')}
    ${b.load('V', 'vc', ncv, 'kr')}
    ${perKey}
  }
  if (row0 + li >= p.Lq) { return; }
  ${rowStore('DQ', v4, 'p.hd', nc, 'dq', 'p.scale')}`,
  };
}

/** dk, dv, subgroup version: a lane owns a key row; query rows (with g, lse, delta) stream past. */
function sgDkvProgram(d: Dims, mask: boolean, causal: boolean): Program {
  return program(attentionKey('attention_dkv', d, mask, causal, true), () => sgDkvProgramSpec(d, mask, causal));
}

function sgDkvProgramSpec(d: Dims, mask: boolean, causal: boolean): ProgramSpec {
  const [nc, ncv] = [chunks(d.D), chunks(d.Dv)];
  const [v4, v4v] = [d.D % 4 === 0, d.Dv % 4 === 0];
  const b = new Block(blockRows(nc, ncv));
  const perQuery = rep(b.kb, (t) => `{
      ${rep(nc, (c) => `let qb${c} = ${b.bc('qc', nc, t, c)};`, ' ')}
      ${rep(ncv, (e) => `let gb${e} = ${b.bc('gc', ncv, t, e)};`, ' ')}
      let s = score(${rep(nc, (c) => `dot(qb${c}, k${c})`, ' + ')}, bh, i0 + ${t}u, j);
      let prob = select(0.0, exp(s - ${b.bcScalar('lseL', t)}), s > MASKED_BELOW);
      let ds = prob * (${rep(ncv, (e) => `dot(gb${e}, v${e})`, ' + ')} - ${b.bcScalar('deltaL', t)});
      ${rep(ncv, (e) => `dv${e} += prob * gb${e};`, ' ')}
      ${rep(nc, (c) => `dk${c} += ds * qb${c};`, ' ')}
    }`, '\n    ');
  const { inputs, loads } = sgBackwardInputs(v4, v4v, mask);
  return {
    name: 'attention_dkv',
    inputs,
    outputs: { DK: rowType(v4), DVo: rowType(v4v) },
    uniforms: UNIFORMS,
    workgroupSize: SG_ROWS,
    enables: ['subgroups'],
    header: `${sgPrelude(d, mask, causal)}\n${loads}`,
    body: /* wgsl */ `${SG_START}
  let key0 = row0;
  let j = min(key0 + li, p.Lk - 1u);
  let r = bh * p.Lk + j;
  ${rep(nc, (c) => `let k${c} = ldK(r, ${c}u);`, ' ')}
  ${rep(ncv, (e) => `let v${e} = ldV(r, ${e}u);`, ' ')}
  ${rep(nc, (c) => `var dk${c} = vec4f(0.0);`, ' ')}
  ${rep(ncv, (e) => `var dv${e} = vec4f(0.0);`, ' ')}
  ${b.lane}
  ${causal ? 'let queryStart = key0; // earlier queries see none of these keys' : 'let queryStart = 0u;'}
  for (var i0 = queryStart; i0 < p.Lq; i0 += ${b.kb}u) {
    // Each lane loads part of query row i0 + t (with g, lse and delta); the broadcasts hand every part to every lane.
    let qr = bh * p.Lq + min(i0 + t, p.Lq - 1u);
    ${b.load('Q', 'qc', nc, 'qr', ' * p.scale')}
    ${b.load('G', 'gc', ncv, 'qr')}
    let lseL = LSE[qr];
    let deltaL = Delta[qr];
    ${perQuery}
  }
  if (key0 + li >= p.Lk) { return; }
  ${rowStore('DK', v4, 'p.hd', nc, 'dk', '1.0')}
  ${rowStore('DVo', v4v, 'p.hdv', ncv, 'dv', '1.0')}`,
  };
}

function resolveScale(d: Dims, scale: number | undefined): number {
  return scale ?? 1 / Math.sqrt(d.D);
}

/** The bindings q, k, v and (when given) the mask. */
function qkvBindings(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Record<string, Binding> {
  return { Q: q, K: k, V: v, ...(mask ? { Mask: mask } : {}) };
}

/** Forward: returns the output (B, Hh, Lq, Dv) and the per-row log-sum-exp (B, Hh, Lq) for the backward. */
export function attentionKernel(q: Tensor, k: Tensor, v: Tensor, cfg: AttentionConfig = {}): { out: Tensor; lse: Tensor } {
  const d = checkInputs(q, k, v, cfg.mask);
  const out = Tensor.empty([d.B, d.H, d.Lq, d.Dv]);
  const lse = Tensor.empty([d.B, d.H, d.Lq]);
  if (out.size === 0) return { out, lse };
  const mask = cfg.mask ?? null;
  const sg = useSubgroups(d, cfg.variant);
  const blocks = ceilDiv(d.Lq, sg ? SG_ROWS : ROWS);
  (sg ? sgForwardProgram : forwardProgram)(d, !!mask, !!cfg.causal).dispatch(
    { ...qkvBindings(q, k, v, mask), O: out, LSE: lse },
    uniforms(d, resolveScale(d, cfg.scale), blocks, mask),
    flatGrid(blocks * d.B * d.H),
  );
  return { out, lse };
}

/**
 * Backward from the output gradient g: recomputes the probabilities from q, k and the saved log-sum-exp. Three
 * parts, so that an input that needs no gradient costs nothing: the row terms (attentionDeltaKernel), then the
 * query gradient (attentionDqKernel) and the key and value gradients (attentionDkvKernel, one kernel).
 */
export function attentionGradKernel(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  g: Tensor,
  cfg: AttentionConfig = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const delta = attentionDeltaKernel(out, g);
  const dq = attentionDqKernel(q, k, v, lse, g, delta, cfg);
  const { dk, dv } = attentionDkvKernel(q, k, v, lse, g, delta, cfg);
  delta.dispose();
  return { dq, dk, dv };
}

/** Delta_i = rowsum(dO ∘ O) = Σ_j P_ij dP_ij (B·Hh·Lq), the softmax backward's correction term both gradients read. */
export function attentionDeltaKernel(out: Tensor, g: Tensor): Tensor {
  const [B, H, Lq, Dv] = out.shape;
  const rows = B * H * Lq;
  const delta = Tensor.empty([rows]);
  if (rows > 0) deltaProgram.dispatchFlat(rows, { O: out, G: g, Delta: delta }, { rows, dv: Dv });
  return delta;
}

/** The gradient of q, from the row terms of attentionDeltaKernel. */
export function attentionDqKernel(q: Tensor, k: Tensor, v: Tensor, lse: Tensor, g: Tensor, delta: Tensor, cfg: AttentionConfig = {}): Tensor {
  const d = checkInputs(q, k, v, cfg.mask);
  const dq = Tensor.empty(q.shape);
  if (d.B * d.H * d.Lq === 0 || d.Lk === 0) return cleared(dq);
  const mask = cfg.mask ?? null;
  const sg = useSubgroups(d, cfg.variant);
  const qBlocks = ceilDiv(d.Lq, sg ? SG_ROWS : ROWS);
  (sg ? sgDqProgram : dqProgram)(d, !!mask, !!cfg.causal).dispatch(
    { ...qkvBindings(q, k, v, mask), G: g, LSE: lse, Delta: delta, DQ: dq },
    uniforms(d, resolveScale(d, cfg.scale), qBlocks, mask),
    flatGrid(qBlocks * d.B * d.H),
  );
  return dq;
}

/** The gradients of k and v (one kernel), from the row terms of attentionDeltaKernel. */
export function attentionDkvKernel(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lse: Tensor,
  g: Tensor,
  delta: Tensor,
  cfg: AttentionConfig = {},
): { dk: Tensor; dv: Tensor } {
  const d = checkInputs(q, k, v, cfg.mask);
  const dk = Tensor.empty(k.shape);
  const dv = Tensor.empty(v.shape);
  if (d.B * d.H * d.Lq === 0 || d.Lk === 0) return { dk: cleared(dk), dv: cleared(dv) };
  const mask = cfg.mask ?? null;
  const sg = useSubgroups(d, cfg.variant);
  const kBlocks = ceilDiv(d.Lk, sg ? SG_ROWS : ROWS);
  (sg ? sgDkvProgram : dkvProgram)(d, !!mask, !!cfg.causal).dispatch(
    { ...qkvBindings(q, k, v, mask), G: g, LSE: lse, Delta: delta, DK: dk, DVo: dv },
    uniforms(d, resolveScale(d, cfg.scale), kBlocks, mask),
    flatGrid(kBlocks * d.B * d.H),
  );
  return { dk, dv };
}

/** t filled with zeros (the gradient of an empty attention). */
function cleared(t: Tensor): Tensor {
  if (t.size) engine().rt.clear(t.buffer, 0, t.bytes);
  return t;
}
