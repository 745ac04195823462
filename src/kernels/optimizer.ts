/**
 * Optimizer kernels, all in place and without reading anything back:
 * the fused Adam/AdamW update of one parameter, and gradient-norm clipping (sums of squares per workgroup,
 * one workgroup that turns them into the norm and the clip factor, then an in-place scale of each gradient).
 * Tensors larger than one storage binding are processed in chunks.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { vectorLanes } from './elementwise.ts';
import { ceilDiv, flatGrid, forEachChunk, Program } from './program.ts';

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
type VecType = 'f32' | 'vec4f';
const vecType = (n: number): VecType => (vectorLanes(n) === 4 ? 'vec4f' : 'f32');

/** Both element types of a kernel, made once. */
function byType(make: (T: VecType) => Program): (T: VecType) => Program {
  const made = { f32: make('f32'), vec4f: make('vec4f') };
  return (T) => made[T];
}

const adamProgram = byType(
  (T) =>
    new Program({
      name: 'adam',
      key: `adam ${T}`,
      inputs: { G: T },
      outputs: { X: T, M: T, V: T },
      uniforms: {
        n: 'u32', beta1: 'f32', beta2: 'f32', oneMinusBeta1: 'f32', oneMinusBeta2: 'f32', eps: 'f32', coupledDecay: 'f32',
        paramDecay: 'f32', stepSize: 'f32', bc2Sqrt: 'f32',
      },
      workgroupSize: WG,
      flat: true,
      body: /* wgsl */ `if (i >= p.n) { return; }
  let x = X[i] * p.paramDecay;
  let g = G[i] + p.coupledDecay * X[i];
  let m = p.beta1 * M[i] + p.oneMinusBeta1 * g;
  let v = p.beta2 * V[i] + p.oneMinusBeta2 * g * g;
  M[i] = m;
  V[i] = v;
  X[i] = x - p.stepSize * m / (sqrt(v) / p.bc2Sqrt + p.eps);`,
    }),
);

/** One Adam/AdamW step on `param` in place, updating its moments m and v (all of the parameter's size). */
export function adamKernel(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, s: AdamScalars): void {
  forEachChunk(param.size, (off, n) => {
    const count = n / vectorLanes(n);
    const bindings = { X: param.binding(off, n), G: grad.binding(off, n), M: m.binding(off, n), V: v.binding(off, n) };
    const { beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, coupledDecay, paramDecay, stepSize, bc2Sqrt } = s;
    const uniforms = { n: count, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, coupledDecay, paramDecay, stepSize, bc2Sqrt };
    adamProgram(vecType(n)).dispatchFlat(count, bindings, uniforms);
  });
}

/** Elements each workgroup of the sum-of-squares pass covers. */
const PER_GROUP = WG * 64;

const TREE = /* wgsl */ `var<workgroup> tree: array<f32, ${WG}>;`;

/** p.n counts elements of type T (vec4s when T is vec4f): a workgroup covers PER_GROUP floats either way. */
const sumSquaresProgram = byType(
  (T) =>
    new Program({
      name: 'grad_sum_squares',
      key: `grad_sum_squares ${T}`,
      inputs: { G: T },
      outputs: { Partial: 'f32' },
      uniforms: { n: 'u32', base: 'u32' },
      workgroupSize: WG,
      header: TREE,
      body: /* wgsl */ `let w = wid.x + wid.y * nwg.x;
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
  if (li == 0u) { Partial[p.base + w] = tree[0]; }`,
    }),
);

const clipFactorProgram = new Program({
  name: 'grad_clip_factor',
  inputs: { Partial: 'f32' },
  outputs: { Norm: 'f32', Factor: 'f32' },
  uniforms: { count: 'u32', maxNorm: 'f32' },
  workgroupSize: WG,
  header: TREE,
  body: /* wgsl */ `var acc = 0.0;
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
  }`,
});

const scaleProgram = byType(
  (T) =>
    new Program({
      name: 'grad_clip_scale',
      key: `grad_clip_scale ${T}`,
      inputs: { Factor: 'f32' },
      outputs: { G: T },
      uniforms: { n: 'u32' },
      workgroupSize: WG,
      flat: true,
      body: 'if (i < p.n) { G[i] = G[i] * Factor[0]; }',
    }),
);

/**
 * The 2-norm over all `grads` (a scalar tensor), and each gradient scaled in place by min(1, maxNorm/(norm+1e-6)).
 * Several leaves can hold one gradient tensor (autograd hands the same gradient to both operands of an add):
 * it counts once per leaf in the norm, as in PyTorch where each leaf has its own copy, but is scaled once.
 */
export function clipByNormKernel(grads: Tensor[], maxNorm: number): Tensor {
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
    sumSquaresProgram(vecType(c.n)).dispatch(
      { G: c.grad.binding(c.off, c.n), Partial: partial },
      { n: c.n / vectorLanes(c.n), base: c.base },
      flatGrid(ceilDiv(c.n, PER_GROUP)),
    );
  const norm = Tensor.empty([]);
  const factor = Tensor.empty([1]);
  clipFactorProgram.dispatch({ Partial: partial, Norm: norm, Factor: factor }, { count: Math.max(1, partials), maxNorm }, [1]);
  const scaledOffsets = new Map<GPUBuffer, Set<number>>();
  for (const c of chunks) {
    const done = scaledOffsets.get(c.grad.buffer) ?? new Set<number>();
    if (done.has(c.off)) continue;
    scaledOffsets.set(c.grad.buffer, done.add(c.off));
    const count = c.n / vectorLanes(c.n);
    scaleProgram(vecType(c.n)).dispatchFlat(count, { G: c.grad.binding(c.off, c.n), Factor: factor }, { n: count });
  }
  partial.dispose();
  factor.dispose();
  return norm;
}
