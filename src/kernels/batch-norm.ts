/**
 * Batch normalisation of (N, C, H, W) maps per channel (PyTorch's BatchNorm2d). Per-channel sums over N·H·W run as
 * (channel, part) workgroups: each part is a run of at most CHUNK_MAX elements of one channel, reduced with a tree
 * in workgroup memory (short channels: one invocation per channel, no barriers). The training statistics are exact two-pass ones without a second trip to memory: a part
 * sums its run, then re-reads the same (cached) run for Σ(x − mean_part)²; a per-channel pass merges the parts'
 * (count, mean, M2) with Chan's formula, and updates the running statistics in place on the GPU.
 * Maps larger than one storage binding are processed in groups of whole images.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { ALIGN_ELEMS, alignedRange, bindableElements } from './binding-range.ts';
import { grid1d, wgsl } from './wgsl.ts';

const WG = 256;
/** At most this many elements per part: its second pass then re-reads them from cache. */
const CHUNK_MAX = 16384;
/** Parts are split below CHUNK_MAX only down to this size, to give few channels enough workgroups. */
const CHUNK_MIN = 1024;
/**
 * Channels of at most this many values (per image group) are reduced serially, one invocation each: workgroup
 * barriers cost more than such short loops on CPU adapters, and tiny planes would idle most of a workgroup.
 */
const SERIAL_MAX = 512;

/** Both versions of a kernel that comes in two (parallel or serial, flat or planar), made once. */
function variants(make: (on: boolean) => string): (on: boolean) => string {
  const [off, on] = [make(false), make(true)];
  return (v) => (v ? on : off);
}

const REDUCE_STRUCT = /* wgsl */ `
struct P { C: u32, HW: u32, R: u32, chunk: u32, parts: u32, partBase: u32, totalParts: u32, base: u32 }`;

/**
 * The common head of the reductions: elements [r0, r1) of channel c's N·H·W values (image-major) within the bound
 * image group go to Part[slot]. Parallel: workgroup w takes part q of channel c; serial: invocation c takes all of
 * channel c (one part). `visit(body)` then loops over the elements with `e` the element's index.
 */
function reduceHead(serial: boolean): string {
  return serial
    ? /* wgsl */ `
  let c = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (c >= p.C) { return; }
  let r0 = 0u;
  let r1 = p.R;
  let slot = c * p.totalParts + p.partBase;`
    : /* wgsl */ `
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.C * p.parts) { return; }
  let c = w / p.parts;
  let q = w - c * p.parts;
  let r0 = q * p.chunk;
  let r1 = min(p.R, r0 + p.chunk);
  let slot = c * p.totalParts + p.partBase + q;`;
}

/** Runs `body` for each element index `e` of the run, plane by plane (no division per element). */
function visit(body: string, serial: boolean): string {
  return /* wgsl */ `
  for (var r = r0; r < r1;) {
    let n = r / p.HW;
    let j0 = r - n * p.HW;
    let len = min(p.HW - j0, r1 - r);
    let first = p.base + (n * p.C + c) * p.HW + j0;
    for (var j = ${serial ? '0u' : 'li'}; j < len; j += ${serial ? '1u' : `${WG}u`}) {
      let e = first + j;
      ${body}
    }
    r += len;
  }`;
}

/** A workgroup tree sum of one value per invocation, which every invocation gets (serial: the value itself). */
function treeSum(type: 'f32' | 'vec2f', serial: boolean): string {
  if (serial) return `fn treeSum(li: u32, v: ${type}) -> ${type} { return v; }`;
  return /* wgsl */ `
var<workgroup> tree: array<${type}, ${WG}>;
fn treeSum(li: u32, v: ${type}) -> ${type} {
  tree[li] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { tree[li] += tree[li + s]; }
    workgroupBarrier();
  }
  let total = tree[0];
  workgroupBarrier(); // the tree may be reused right after
  return total;
}`;
}

const ENTRY = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {`;

// Part statistics (count, mean, M2) of x.
const statsPartsCode = variants((serial) => /* wgsl */ `${REDUCE_STRUCT}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Part: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
${treeSum('f32', serial)}
${ENTRY}
${reduceHead(serial)}
  var acc = 0.0;
  ${visit('acc += X[e];', serial)}
  let count = f32(r1 - r0);
  let mean = treeSum(li, acc) / count;
  var sq = 0.0;
  ${visit('let d = X[e] - mean; sq += d * d;', serial)}
  let m2 = treeSum(li, sq);
  if (${serial ? 'true' : 'li == 0u'}) {
    Part[3u * slot] = count;
    Part[3u * slot + 1u] = mean;
    Part[3u * slot + 2u] = m2;
  }
}`);

// Per channel: merges the parts, writes (mean, invstd) and updates the running statistics in place.
const statsMergeCode = /* wgsl */ `
struct P { C: u32, totalParts: u32, momentum: f32, eps: f32 }
@group(0) @binding(0) var<storage, read> Part: array<f32>;
@group(0) @binding(1) var<storage, read_write> Stats: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> RunMean: array<f32>;
@group(0) @binding(3) var<storage, read_write> RunVar: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let c = (wid.x + wid.y * nwg.x) * 64u + li;
  if (c >= p.C) { return; }
  var n = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var q = 0u; q < p.totalParts; q++) {
    let k = 3u * (c * p.totalParts + q);
    let nb = Part[k];
    if (nb == 0.0) { continue; } // an empty trailing part
    let total = n + nb;
    let d = Part[k + 1u] - mean;
    mean += d * (nb / total);
    m2 += Part[k + 2u] + d * d * (n * nb / total);
    n = total;
  }
  let biased = max(m2 / n, 0.0);
  Stats[c] = vec2f(mean, 1.0 / sqrt(biased + p.eps));
  // PyTorch's running variance is the unbiased one; with a single value per channel that would divide by zero.
  let unbiased = select(biased, max(m2 / (n - 1.0), 0.0), n > 1.0);
  RunMean[c] = (1.0 - p.momentum) * RunMean[c] + p.momentum * mean;
  RunVar[c] = (1.0 - p.momentum) * RunVar[c] + p.momentum * unbiased;
}`;

// Eval mode: (mean, invstd) from the running statistics (a snapshot, so later updates do not reach the backward).
const runningStatsCode = /* wgsl */ `
struct P { C: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> RunMean: array<f32>;
@group(0) @binding(1) var<storage, read> RunVar: array<f32>;
@group(0) @binding(2) var<storage, read_write> Stats: array<vec2f>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let c = (wid.x + wid.y * nwg.x) * 64u + li;
  if (c >= p.C) { return; }
  Stats[c] = vec2f(RunMean[c], 1.0 / sqrt(RunVar[c] + p.eps));
}`;

const ELEMENT_STRUCT = /* wgsl */ `
struct P { n: u32, C: u32, HW: u32, base: u32, planes: u32, blocks: u32, _a: u32, _b: u32 }`;

/** Planes at least this long run a workgroup per (plane, block): no integer division per element. */
const PLANAR_MIN = WG / 2;

/**
 * The head of the elementwise kernels: `i`, the element's index in the group, and `c`, its channel. Planar: each
 * workgroup covers a block of one plane, so the channel is found once per workgroup (integer division is slow
 * per element on CPU adapters); flat: one invocation per element, for small planes that would idle most lanes.
 */
function elementHead(planar: boolean): string {
  return wgsl`
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
#if ${planar}
  let w = wid.x + wid.y * nwg.x;
  let plane = w / p.blocks;
  let j = (w - plane * p.blocks) * ${WG}u + li;
  if (plane >= p.planes || j >= p.HW) { return; }
  let c = plane % p.C;
  let i = plane * p.HW + j;
#else
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let c = (i / p.HW) % p.C;
#endif`;
}

// y = (x − mean)·invstd·γ + β.
const applyCode = variants((planar) => /* wgsl */ `${ELEMENT_STRUCT}
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Stats: array<vec2f>;
@group(0) @binding(2) var<storage, read> Gamma: array<f32>;
@group(0) @binding(3) var<storage, read> Beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<uniform> p: P;
${elementHead(planar)}
  let s = Stats[c];
  O[p.base + i] = (X[p.base + i] - s.x) * (s.y * Gamma[c]) + Beta[c];
}`);

// Backward part sums (Σ g, Σ g·x̂) with x̂ = (x − mean)·invstd.
const gradPartsCode = variants((serial) => /* wgsl */ `${REDUCE_STRUCT}
@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Stats: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> Part: array<vec2f>;
@group(0) @binding(4) var<uniform> p: P;
${treeSum('vec2f', serial)}
${ENTRY}
${reduceHead(serial)}
  let s = Stats[c];
  var acc = vec2f(0.0);
  ${visit('let g = G[e]; acc += vec2f(g, g * (X[e] - s.x) * s.y);', serial)}
  let total = treeSum(li, acc);
  if (${serial ? 'true' : 'li == 0u'}) { Part[slot] = total; }
}`);

// Per channel: dβ = Σg, dγ = Σg·x̂, and the coefficients of dx = a·g + b + d·(x − mean) (training: through the
// batch statistics; eval: b = d = 0).
const gradMergeCode = /* wgsl */ `
struct P { C: u32, totalParts: u32, M: f32, training: u32 }
@group(0) @binding(0) var<storage, read> Part: array<vec2f>;
@group(0) @binding(1) var<storage, read> Stats: array<vec2f>;
@group(0) @binding(2) var<storage, read> Gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> DGamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> DBeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> Coef: array<vec4f>;
@group(0) @binding(6) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let c = (wid.x + wid.y * nwg.x) * 64u + li;
  if (c >= p.C) { return; }
  var sums = vec2f(0.0);
  for (var q = 0u; q < p.totalParts; q++) { sums += Part[c * p.totalParts + q]; }
  DBeta[c] = sums.x;
  DGamma[c] = sums.y;
  let s = Stats[c];
  let a = Gamma[c] * s.y;
  if (p.training != 0u) {
    Coef[c] = vec4f(a, -a * sums.x / p.M, -a * s.y * sums.y / p.M, s.x);
  } else {
    Coef[c] = vec4f(a, 0.0, 0.0, s.x);
  }
}`;

const gradInputCode = variants((planar) => /* wgsl */ `${ELEMENT_STRUCT}
@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> Coef: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
${elementHead(planar)}
  let k = Coef[c];
  O[p.base + i] = k.x * G[p.base + i] + k.y + k.z * (X[p.base + i] - k.w);
}`);

interface ImageGroup {
  /** Images in the group. */
  count: number;
  /** Binds the group's elements of an (N, C, H, W) tensor. */
  bind: (t: Tensor) => BufferRange;
  /** Index of the group's first element inside each binding (all operands start alike). */
  base: number;
}

/** Splits the batch into runs of whole images whose bindings each fit one storage binding. */
function imageGroups(shape: readonly number[], label: string): ImageGroup[] {
  const [n, c, h, w] = shape;
  const image = c * h * w;
  const perGroup = Math.floor(bindableElements() / Math.max(image, 1));
  if (perGroup < 1) throw new LimitError(`${label}: one image of ${c}×${h}×${w} values exceeds one storage binding`);
  const groups: ImageGroup[] = [];
  for (let n0 = 0; n0 < n; n0 += perGroup) {
    const count = Math.min(perGroup, n - n0);
    const offset = n0 * image;
    // Every operand is a whole tensor of this shape, so the aligned start, and the base, are the same for all.
    groups.push({ count, bind: (t) => alignedRange(t, offset, count * image).range, base: offset % ALIGN_ELEMS });
  }
  return groups;
}

/**
 * Parts per channel for a group of R values per channel: runs of at most CHUNK_MAX, more when channels are few;
 * one (serial) for short channels.
 */
function partsFor(R: number, channels: number): number {
  if (R <= SERIAL_MAX) return 1;
  const forWidth = Math.min(Math.ceil(256 / channels), Math.ceil(R / CHUNK_MIN));
  return Math.max(1, Math.ceil(R / CHUNK_MAX), forWidth);
}

interface PartPlan {
  groups: ImageGroup[];
  parts: number[];
  totalParts: number;
}

function planParts(shape: readonly number[], label: string): PartPlan {
  const [, c, h, w] = shape;
  const groups = imageGroups(shape, label);
  const parts = groups.map((g) => partsFor(g.count * h * w, c));
  return { groups, parts, totalParts: parts.reduce((a, b) => a + b, 0) };
}

/** Dispatches a (channel, part) reduction over every image group; `buffers` binds the group's operands. */
function reduceParts(label: string, code: (serial: boolean) => string, shape: readonly number[], plan: PartPlan, buffers: (g: ImageGroup) => (GPUBuffer | BufferRange)[]): void {
  const [, c, h, w] = shape;
  let partBase = 0;
  plan.groups.forEach((g, i) => {
    const R = g.count * h * w;
    const parts = plan.parts[i];
    const serial = R <= SERIAL_MAX;
    engine().rt.dispatch({
      label,
      code: code(serial),
      buffers: buffers(g),
      params: new Params().u32(c, h * w, R, Math.ceil(R / parts), parts, partBase, plan.totalParts, g.base).bytes,
      workgroups: grid1d(serial ? Math.ceil(c / WG) : c * parts),
    });
    partBase += parts;
  });
}

/** Dispatches an elementwise kernel (`code(planar)`) over every image group. */
function elementwise(label: string, code: (planar: boolean) => string, shape: readonly number[], buffers: (g: ImageGroup) => (GPUBuffer | BufferRange)[]): void {
  const [, c, h, w] = shape;
  const hw = h * w;
  const planar = hw >= PLANAR_MIN;
  const blocks = Math.ceil(hw / WG);
  for (const g of imageGroups(shape, label)) {
    const planes = g.count * c;
    engine().rt.dispatch({
      label,
      code: code(planar),
      buffers: buffers(g),
      params: new Params().u32(planes * hw, c, hw, g.base, planes, blocks, 0, 0).bytes,
      workgroups: grid1d(planar ? planes * blocks : Math.ceil((planes * hw) / WG)),
    });
  }
}

function channelGrid(c: number): [number, number, number] {
  return grid1d(Math.ceil(c / 64));
}

/**
 * Training statistics of x (N, C, H, W): returns (C, 2) = (batch mean, 1/√(biased var + eps)) and updates
 * runMean, runVar (C) in place: r ← (1 − momentum)·r + momentum·batch, with the unbiased batch variance
 * (the biased one, 0, when N·H·W = 1).
 */
export function batchStatsKernel(x: Tensor, runMean: Tensor, runVar: Tensor, momentum: number, eps: number): Tensor {
  const c = x.shape[1];
  const plan = planParts(x.shape, 'batch_norm_stats');
  const part = Tensor.empty([c, plan.totalParts, 3]);
  reduceParts('batch_norm_stats', statsPartsCode, x.shape, plan, (g) => [g.bind(x), part.buffer]);
  const stats = Tensor.empty([c, 2]);
  engine().rt.dispatch({
    label: 'batch_norm_merge',
    code: statsMergeCode,
    buffers: [part.buffer, stats.buffer, runMean.buffer, runVar.buffer],
    params: new Params().u32(c, plan.totalParts).f32(momentum, eps).bytes,
    workgroups: channelGrid(c),
  });
  part.dispose();
  return stats;
}

/** Eval statistics: (C, 2) = (running mean, 1/√(running var + eps)). */
export function runningStatsKernel(runMean: Tensor, runVar: Tensor, eps: number): Tensor {
  const c = runMean.size;
  const stats = Tensor.empty([c, 2]);
  engine().rt.dispatch({
    label: 'batch_norm_running',
    code: runningStatsCode,
    buffers: [runMean.buffer, runVar.buffer, stats.buffer],
    params: new Params().u32(c).f32(eps).u32(0, 0).bytes,
    workgroups: channelGrid(c),
  });
  return stats;
}

/** y = (x − mean)·invstd·γ + β per channel, with stats (C, 2) from batchStatsKernel or runningStatsKernel. */
export function batchNormApplyKernel(x: Tensor, stats: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  if (out.size === 0) return out;
  elementwise('batch_norm_apply', applyCode, x.shape, (g) => [g.bind(x), stats.buffer, gamma.buffer, beta.buffer, g.bind(out)]);
  return out;
}

export interface BatchNormGrads {
  dx: Tensor | null;
  dGamma: Tensor;
  dBeta: Tensor;
}

/**
 * Gradients of batchNormApplyKernel given the output gradient g. Training: the full backward through the batch
 * statistics, dx = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)); eval: dx = γ·invstd·g. dx only when `wantDx`.
 */
export function batchNormBackwardKernel(g: Tensor, x: Tensor, stats: Tensor, gamma: Tensor, training: boolean, wantDx: boolean): BatchNormGrads {
  const [n, c, h, w] = x.shape;
  const plan = planParts(x.shape, 'batch_norm_grad');
  const part = Tensor.empty([c, plan.totalParts, 2]);
  reduceParts('batch_norm_grad_sums', gradPartsCode, x.shape, plan, (grp) => [grp.bind(g), grp.bind(x), stats.buffer, part.buffer]);
  const dGamma = Tensor.empty(gamma.shape);
  const dBeta = Tensor.empty(gamma.shape);
  const coef = Tensor.empty([c, 4]);
  engine().rt.dispatch({
    label: 'batch_norm_grad_merge',
    code: gradMergeCode,
    buffers: [part.buffer, stats.buffer, gamma.buffer, dGamma.buffer, dBeta.buffer, coef.buffer],
    params: new Params().u32(c, plan.totalParts).f32(n * h * w).u32(+training).bytes,
    workgroups: channelGrid(c),
  });
  part.dispose();
  let dx: Tensor | null = null;
  if (wantDx) {
    const out = Tensor.empty(x.shape);
    elementwise('batch_norm_grad_x', gradInputCode, x.shape, (grp) => [grp.bind(g), grp.bind(x), coef.buffer, grp.bind(out)]);
    dx = out;
  }
  coef.dispose();
  return { dx, dGamma, dBeta };
}
