/**
 * Batch normalisation of (N, C, H, W) maps per channel (PyTorch's BatchNorm2d). Per-channel sums over N·H·W run as
 * (channel, part) workgroups: each part is a run of at most CHUNK_MAX elements of one channel, reduced with a tree
 * in workgroup memory (short channels: one invocation per channel, no barriers). The training statistics are exact
 * two-pass ones without a second trip to memory: a part sums its run, then re-reads the same (cached) run for
 * Σ(x − mean_part)²; a per-channel pass merges the parts' (count, mean, M2) with Chan's formula, and updates the
 * running statistics in place on the GPU.
 * Maps larger than one storage binding are processed in groups of whole images.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { LimitError } from '../runtime/errors.ts';
import { ALIGN_ELEMS, alignedRange, bindableElements, type Binding, flatGrid, forEachItemRun, Program } from './program.ts';

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
function variants(make: (on: boolean) => Program): (on: boolean) => Program {
  const [off, on] = [make(false), make(true)];
  return (v) => (v ? on : off);
}

const REDUCE_UNIFORMS = {
  C: 'u32', HW: 'u32', R: 'u32', chunk: 'u32', parts: 'u32', partBase: 'u32', totalParts: 'u32', base: 'u32',
} as const;

/**
 * The common head of the reductions: elements [r0, r1) of channel c's N·H·W values (image-major) within the bound
 * image group go to Part[slot]. Parallel: workgroup w takes part q of channel c; serial: invocation c (the flat
 * index) takes all of channel c (one part). `visit(body)` then loops over the elements with `e` the element's index.
 */
function reduceHead(serial: boolean): string {
  return serial
    ? /* wgsl */ `
  let c = i;
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

// Part statistics (count, mean, M2) of x.
const statsPartsProgram = variants(
  (serial) =>
    new Program({
      name: 'batch_norm_stats',
      key: `batch_norm_stats ${serial ? 'serial' : 'tree'}`,
      inputs: { X: 'f32' },
      outputs: { Part: 'f32' },
      uniforms: REDUCE_UNIFORMS,
      workgroupSize: WG,
      flat: serial,
      header: treeSum('f32', serial),
      body: /* wgsl */ `${reduceHead(serial)}
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
  }`,
    }),
);

// Per channel: merges the parts, writes (mean, invstd) and updates the running statistics in place.
const statsMergeProgram = new Program({
  name: 'batch_norm_merge',
  inputs: { Part: 'f32' },
  outputs: { Stats: 'vec2f', RunMean: 'f32', RunVar: 'f32' },
  uniforms: { C: 'u32', totalParts: 'u32', momentum: 'f32', eps: 'f32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `let c = i;
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
  RunVar[c] = (1.0 - p.momentum) * RunVar[c] + p.momentum * unbiased;`,
});

// Eval mode: (mean, invstd) from the running statistics (a snapshot, so later updates do not reach the backward).
const runningStatsProgram = new Program({
  name: 'batch_norm_running',
  inputs: { RunMean: 'f32', RunVar: 'f32' },
  outputs: { Stats: 'vec2f' },
  uniforms: { C: 'u32', eps: 'f32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `let c = i;
  if (c >= p.C) { return; }
  Stats[c] = vec2f(RunMean[c], 1.0 / sqrt(RunVar[c] + p.eps));`,
});

const ELEMENT_UNIFORMS = { n: 'u32', C: 'u32', HW: 'u32', base: 'u32', planes: 'u32', blocks: 'u32' } as const;

/** Planes at least this long run a workgroup per (plane, block): no integer division per element. */
const PLANAR_MIN = WG / 2;

/**
 * The head of the elementwise kernels: `i`, the element's index in the group, and `c`, its channel. Planar: each
 * workgroup covers a block of one plane, so the channel is found once per workgroup (integer division is slow
 * per element on CPU adapters); flat: one invocation per element (the flat index), for small planes that would
 * idle most lanes.
 */
function elementHead(planar: boolean): string {
  return planar
    ? /* wgsl */ `let w = wid.x + wid.y * nwg.x;
  let plane = w / p.blocks;
  let j = (w - plane * p.blocks) * ${WG}u + li;
  if (plane >= p.planes || j >= p.HW) { return; }
  let c = plane % p.C;
  let i = plane * p.HW + j;`
    : /* wgsl */ `if (i >= p.n) { return; }
  let c = (i / p.HW) % p.C;`;
}

// y = (x − mean)·invstd·γ + β.
const applyProgram = variants(
  (planar) =>
    new Program({
      name: 'batch_norm_apply',
      key: `batch_norm_apply ${planar ? 'planar' : 'flat'}`,
      inputs: { X: 'f32', Stats: 'vec2f', Gamma: 'f32', Beta: 'f32' },
      outputs: { O: 'f32' },
      uniforms: ELEMENT_UNIFORMS,
      workgroupSize: WG,
      flat: !planar,
      body: /* wgsl */ `${elementHead(planar)}
  let s = Stats[c];
  O[p.base + i] = (X[p.base + i] - s.x) * (s.y * Gamma[c]) + Beta[c];`,
    }),
);

// Backward part sums (Σ g, Σ g·x̂) with x̂ = (x − mean)·invstd.
const gradPartsProgram = variants(
  (serial) =>
    new Program({
      name: 'batch_norm_grad_sums',
      key: `batch_norm_grad_sums ${serial ? 'serial' : 'tree'}`,
      inputs: { G: 'f32', X: 'f32', Stats: 'vec2f' },
      outputs: { Part: 'vec2f' },
      uniforms: REDUCE_UNIFORMS,
      workgroupSize: WG,
      flat: serial,
      header: treeSum('vec2f', serial),
      body: /* wgsl */ `${reduceHead(serial)}
  let s = Stats[c];
  var acc = vec2f(0.0);
  ${visit('let g = G[e]; acc += vec2f(g, g * (X[e] - s.x) * s.y);', serial)}
  let total = treeSum(li, acc);
  if (${serial ? 'true' : 'li == 0u'}) { Part[slot] = total; }`,
    }),
);

// Per channel: dβ = Σg, dγ = Σg·x̂, and the coefficients of dx = a·g + b + d·(x − mean) (training: through the
// batch statistics; eval: b = d = 0).
const gradMergeProgram = new Program({
  name: 'batch_norm_grad_merge',
  inputs: { Part: 'vec2f', Stats: 'vec2f', Gamma: 'f32' },
  outputs: { DGamma: 'f32', DBeta: 'f32', Coef: 'vec4f' },
  uniforms: { C: 'u32', totalParts: 'u32', M: 'f32', training: 'u32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `let c = i;
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
  }`,
});

const gradInputProgram = variants(
  (planar) =>
    new Program({
      name: 'batch_norm_grad_x',
      key: `batch_norm_grad_x ${planar ? 'planar' : 'flat'}`,
      inputs: { G: 'f32', X: 'f32', Coef: 'vec4f' },
      outputs: { O: 'f32' },
      uniforms: ELEMENT_UNIFORMS,
      workgroupSize: WG,
      flat: !planar,
      body: /* wgsl */ `${elementHead(planar)}
  let k = Coef[c];
  O[p.base + i] = k.x * G[p.base + i] + k.y + k.z * (X[p.base + i] - k.w);`,
    }),
);

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
  if (image > bindableElements()) throw new LimitError(`${label}: one image of ${c}×${h}×${w} values exceeds one storage binding`);
  const groups: ImageGroup[] = [];
  forEachItemRun(n, image, label, (n0, count) => {
    const offset = n0 * image;
    // Every operand is a whole tensor of this shape, so the aligned start, and the base, are the same for all.
    groups.push({ count, bind: (t) => alignedRange(t, offset, count * image).range, base: offset % ALIGN_ELEMS });
  });
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

/** Dispatches a (channel, part) reduction over every image group; `bind` names the group's operands. */
function reduceParts(program: (serial: boolean) => Program, shape: readonly number[], plan: PartPlan, bind: (g: ImageGroup) => Record<string, Binding>): void {
  const [, c, h, w] = shape;
  let partBase = 0;
  plan.groups.forEach((g, i) => {
    const R = g.count * h * w;
    const parts = plan.parts[i];
    const serial = R <= SERIAL_MAX;
    const uniforms = { C: c, HW: h * w, R, chunk: Math.ceil(R / parts), parts, partBase, totalParts: plan.totalParts, base: g.base };
    if (serial) program(true).dispatchFlat(c, bind(g), uniforms);
    else program(false).dispatch(bind(g), uniforms, flatGrid(c * parts));
    partBase += parts;
  });
}

/** Dispatches an elementwise kernel (`program(planar)`) over every image group. */
function elementwise(program: (planar: boolean) => Program, shape: readonly number[], bind: (g: ImageGroup) => Record<string, Binding>): void {
  const [, c, h, w] = shape;
  const hw = h * w;
  const planar = hw >= PLANAR_MIN;
  const blocks = Math.ceil(hw / WG);
  for (const g of imageGroups(shape, program(planar).spec.name)) {
    const planes = g.count * c;
    const uniforms = { n: planes * hw, C: c, HW: hw, base: g.base, planes, blocks };
    if (planar) program(true).dispatch(bind(g), uniforms, flatGrid(planes * blocks));
    else program(false).dispatchFlat(planes * hw, bind(g), uniforms);
  }
}

/**
 * Training statistics of x (N, C, H, W): returns (C, 2) = (batch mean, 1/√(biased var + eps)) and updates
 * runMean, runVar (C) in place: r ← (1 − momentum)·r + momentum·batch, with the unbiased batch variance
 * (the biased one, 0, when N·H·W = 1).
 */
export function batchNormStatsKernel(x: Tensor, runMean: Tensor, runVar: Tensor, momentum: number, eps: number): Tensor {
  const c = x.shape[1];
  const plan = planParts(x.shape, 'batch_norm_stats');
  const part = Tensor.empty([c, plan.totalParts, 3]);
  reduceParts(statsPartsProgram, x.shape, plan, (g) => ({ X: g.bind(x), Part: part }));
  const stats = Tensor.empty([c, 2]);
  statsMergeProgram.dispatchFlat(c, { Part: part, Stats: stats, RunMean: runMean, RunVar: runVar }, { C: c, totalParts: plan.totalParts, momentum, eps });
  part.dispose();
  return stats;
}

/** Eval statistics: (C, 2) = (running mean, 1/√(running var + eps)). */
export function batchNormRunningStatsKernel(runMean: Tensor, runVar: Tensor, eps: number): Tensor {
  const c = runMean.size;
  const stats = Tensor.empty([c, 2]);
  runningStatsProgram.dispatchFlat(c, { RunMean: runMean, RunVar: runVar, Stats: stats }, { C: c, eps });
  return stats;
}

/** y = (x − mean)·invstd·γ + β per channel, with stats (C, 2) from batchNormStatsKernel or batchNormRunningStatsKernel. */
export function batchNormApplyKernel(x: Tensor, stats: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  if (out.size === 0) return out;
  elementwise(applyProgram, x.shape, (g) => ({ X: g.bind(x), Stats: stats, Gamma: gamma, Beta: beta, O: g.bind(out) }));
  return out;
}

export interface BatchNormGradStats {
  dGamma: Tensor;
  dBeta: Tensor;
  /** (C, 4): the per-channel coefficients of dx (batchNormGradInputKernel). */
  coef: Tensor;
}

/**
 * Gradients of batchNormApplyKernel given the output gradient g, in two parts. This one: one reduction over
 * (N, H, W) per channel gives dγ, dβ and the coefficients of dx; batchNormGradInputKernel then gives dx from them.
 * Training: the full backward through the batch statistics, dx = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)); eval:
 * dx = γ·invstd·g.
 */
export function batchNormGradStatsKernel(g: Tensor, x: Tensor, stats: Tensor, gamma: Tensor, training: boolean): BatchNormGradStats {
  const [n, c, h, w] = x.shape;
  const plan = planParts(x.shape, 'batch_norm_grad');
  const part = Tensor.empty([c, plan.totalParts, 2]);
  reduceParts(gradPartsProgram, x.shape, plan, (grp) => ({ G: grp.bind(g), X: grp.bind(x), Stats: stats, Part: part }));
  const dGamma = Tensor.empty(gamma.shape);
  const dBeta = Tensor.empty(gamma.shape);
  const coef = Tensor.empty([c, 4]);
  const merge = { Part: part, Stats: stats, Gamma: gamma, DGamma: dGamma, DBeta: dBeta, Coef: coef };
  gradMergeProgram.dispatchFlat(c, merge, { C: c, totalParts: plan.totalParts, M: n * h * w, training: +training });
  part.dispose();
  return { dGamma, dBeta, coef };
}

/** dx from the coefficients of batchNormGradStatsKernel. */
export function batchNormGradInputKernel(g: Tensor, x: Tensor, coef: Tensor): Tensor {
  const dx = Tensor.empty(x.shape);
  elementwise(gradInputProgram, x.shape, (grp) => ({ G: grp.bind(g), X: grp.bind(x), Coef: coef, O: grp.bind(dx) }));
  return dx;
}
