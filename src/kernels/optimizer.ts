/**
 * Optimizer kernels, all in place and without reading anything back:
 * the fused Adam/AdamW update of one parameter, and gradient-norm clipping (sums of squares per workgroup,
 * one workgroup that turns them into the norm and the clip factor, then an in-place scale of each gradient).
 * Tensors larger than one storage binding are processed in chunks.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { vectorLanes } from './elementwise.ts';
import { forEachChunk } from './program.ts';
import { grid1d, ceilDiv } from './wgsl.ts';

const WG = 256;

/** Step-dependent scalars of one Adam update, computed in float64 on the CPU. */
export interface AdamScalars {
  beta1: number;
  beta2: number;
  /** 1 − β1 and 1 − β2, rounded from float64 (1 − f32(0.999) is off by 1.3e-5). */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  eps: number;
  /** L2 penalty added to the gradient (torch.optim.Adam). */
  coupledDecay: number;
  /** Factor applied to the parameter before the update: 1 − lr·wd for AdamW, else 1. */
  paramDecay: number;
  /** lr / (1 − β1^t). */
  stepSize: number;
  /** √(1 − β2^t). */
  bc2Sqrt: number;
}

/**
 * The update kernels read and write vec4s when a chunk's length is a multiple of 4 (lavapipe: one load per lane
 * whatever its width, so 4× the data per access); the arithmetic is the same for f32 and vec4f.
 */
const vecType = (n: number) => (vectorLanes(n) === 4 ? 'vec4f' : 'f32');

const adamCode = (T: string) => /* wgsl */ `
struct P { n: u32, beta1: f32, beta2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32, eps: f32, coupledDecay: f32, paramDecay: f32,
  stepSize: f32, bc2Sqrt: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read_write> X: array<${T}>;
@group(0) @binding(1) var<storage, read> G: array<${T}>;
@group(0) @binding(2) var<storage, read_write> M: array<${T}>;
@group(0) @binding(3) var<storage, read_write> V: array<${T}>;
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let x = X[i] * p.paramDecay;
  let g = G[i] + p.coupledDecay * X[i];
  let m = p.beta1 * M[i] + p.oneMinusBeta1 * g;
  let v = p.beta2 * V[i] + p.oneMinusBeta2 * g * g;
  M[i] = m;
  V[i] = v;
  X[i] = x - p.stepSize * m / (sqrt(v) / p.bc2Sqrt + p.eps);
}`;

/** One Adam/AdamW step on `param` in place, updating its moments m and v (all of the parameter's size). */
export function adamUpdate(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, s: AdamScalars): void {
  const rt = engine().rt;
  forEachChunk(param.size, (off, n) => {
    rt.dispatch({
      label: 'adam',
      code: adamCode(vecType(n)),
      buffers: [param.binding(off, n), grad.binding(off, n), m.binding(off, n), v.binding(off, n)],
      params: new Params().u32(n / vectorLanes(n)).f32(s.beta1, s.beta2, s.oneMinusBeta1, s.oneMinusBeta2, s.eps, s.coupledDecay, s.paramDecay, s.stepSize, s.bc2Sqrt).bytes,
      workgroups: grid1d(ceilDiv(n / vectorLanes(n), WG)),
    });
  });
}

/** Elements each workgroup of the sum-of-squares pass covers. */
const PER_GROUP = WG * 64;

/** p.n counts elements of type T (vec4s when T is vec4f): a workgroup covers PER_GROUP floats either way. */
const sumSquaresCode = (T: string) => /* wgsl */ `
struct P { n: u32, base: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> G: array<${T}>;
@group(0) @binding(1) var<storage, read_write> Partial: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> tree: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  let per = ${PER_GROUP}u / ${T === 'f32' ? 1 : 4}u;
  let start = w * per;
  if (start >= p.n) { return; } // past the end of a 2-D grid: must not write another tensor's slot
  let end = min(p.n, start + per);
  var acc = 0.0;
  for (var i = start + li; i < end; i += ${WG}u) { acc += ${T === 'f32' ? 'G[i] * G[i]' : 'dot(G[i], G[i])'}; }
  tree[li] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { tree[li] += tree[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { Partial[p.base + w] = tree[0]; }
}`;

const CLIP_FACTOR_CODE = /* wgsl */ `
struct P { count: u32, maxNorm: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> Partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> Norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> Factor: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> tree: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  for (var i = li; i < p.count; i += ${WG}u) { acc += Partial[i]; }
  tree[li] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { tree[li] += tree[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let norm = sqrt(tree[0]);
    Norm[0] = norm;
    Factor[0] = min(1.0, p.maxNorm / (norm + 1e-6));
  }
}`;

const scaleCode = (T: string) => /* wgsl */ `
struct P { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<storage, read_write> G: array<${T}>;
@group(0) @binding(1) var<storage, read> Factor: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i < p.n) { G[i] = G[i] * Factor[0]; }
}`;

/**
 * The 2-norm over all `grads` (a scalar tensor), and each gradient scaled in place by min(1, maxNorm/(norm+1e-6)).
 * Several leaves can hold one gradient tensor (autograd hands the same gradient to both operands of an add):
 * it counts once per leaf in the norm, as in PyTorch where each leaf has its own copy, but is scaled once.
 */
export function clipByTotalNorm(grads: Tensor[], maxNorm: number): Tensor {
  const rt = engine().rt;
  const chunks: Array<{ grad: Tensor; off: number; n: number; base: number }> = [];
  let partials = 0;
  for (const grad of grads)
    forEachChunk(grad.size, (off, n) => {
      chunks.push({ grad, off, n, base: partials });
      partials += ceilDiv(n, PER_GROUP);
    });
  const partial = Tensor.empty([Math.max(1, partials)]);
  if (partials === 0) rt.clear(partial.buffer, 0, 4);
  for (const c of chunks)
    rt.dispatch({
      label: 'grad_sum_squares',
      code: sumSquaresCode(vecType(c.n)),
      buffers: [c.grad.binding(c.off, c.n), partial.buffer],
      params: new Params().u32(c.n / vectorLanes(c.n), c.base, 0, 0).bytes,
      workgroups: grid1d(ceilDiv(c.n, PER_GROUP)),
    });
  const norm = Tensor.empty([]);
  const factor = Tensor.empty([1]);
  rt.dispatch({
    label: 'grad_clip_factor',
    code: CLIP_FACTOR_CODE,
    buffers: [partial.buffer, norm.buffer, factor.buffer],
    params: new Params().u32(Math.max(1, partials)).f32(maxNorm).u32(0, 0).bytes,
    workgroups: [1],
  });
  const scaledOffsets = new Map<GPUBuffer, Set<number>>();
  for (const c of chunks) {
    const done = scaledOffsets.get(c.grad.buffer) ?? new Set<number>();
    if (done.has(c.off)) continue;
    scaledOffsets.set(c.grad.buffer, done.add(c.off));
    rt.dispatch({
      label: 'grad_clip_scale',
      code: scaleCode(vecType(c.n)),
      buffers: [c.grad.binding(c.off, c.n), factor.buffer],
      params: new Params().u32(c.n / vectorLanes(c.n), 0, 0, 0).bytes,
      workgroups: grid1d(ceilDiv(c.n / vectorLanes(c.n), WG)),
    });
  }
  partial.dispose();
  factor.dispose();
  return norm;
}
