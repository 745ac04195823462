/**
 * Elementwise kernels: unary maps and binary maps with NumPy broadcasting, given as WGSL expressions.
 * Tensors larger than one storage binding are processed in chunks (same-shape operands only).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { forEachChunk, program, Program, type ProgramSpec } from './program.ts';

const WG = 256;
const MAX_DIMS = 8;

/**
 * Elements per invocation of the vectorised kernels: 4 when n is a multiple of 4 (then so is every chunk of
 * forEachChunk, a multiple of 64 elements), else 1. With 4, each invocation maps 4 consecutive elements, read and
 * written as vec4s: on lavapipe a storage access costs one load per lane whatever its width, so this moves 4× the
 * data per access. Scalar expressions are evaluated per component, so any f32 expression works.
 */
export function vectorLanes(n: number): 1 | 4 {
  return n % 4 === 0 ? 4 : 1;
}

function perComponent(line: (c: string) => string): string {
  return ['x', 'y', 'z', 'w'].map(line).join('\n  ');
}

/** The program of a unary map; its callers' labels name its dispatches. */
function unaryProgram(expr: string, v4: boolean): Program {
  return program(`unary ${v4 ? 'vec4' : 'f32'} ${expr}`, () => unarySpec(expr, v4));
}

function unarySpec(expr: string, v4: boolean): ProgramSpec {
  const type = v4 ? 'vec4f' : 'f32';
  const body = v4
    ? `let xv = X[i]; var o: vec4f;
  ${perComponent((c) => `{ let x = xv.${c}; o.${c} = ${expr}; }`)}
  O[i] = o;`
    : `let x = X[i];
  O[i] = ${expr};`;
  return {
    name: 'unary',
    inputs: { X: type },
    outputs: { O: type },
    uniforms: { n: 'u32', s0: 'f32', s1: 'f32' },
    workgroupSize: WG,
    flat: true,
    body: `if (i >= p.n) { return; }\n  ${body}`,
  };
}

/**
 * O = f(x) where `expr` is a WGSL f32 expression of `x` and the scalars `p.s0`, `p.s1`.
 * Example: unaryMapKernel('max(x, 0.0)', t).
 */
export function unaryMapKernel(expr: string, x: Tensor, s0 = 0, s1 = 0, label = 'unary'): Tensor {
  const out = Tensor.empty(x.shape);
  const lanes = vectorLanes(x.size);
  const unary = unaryProgram(expr, lanes === 4);
  forEachChunk(x.size, (off, n) => unary.dispatchFlat(n / lanes, { X: x.binding(off, n), O: out.binding(off, n) }, { n: n / lanes, s0, s1 }, label));
  return out;
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` aligned to `outShape` (0 on broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = outShape.length - shape.length + i;
    strides[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

type Mode = 'same' | 'scalarB' | 'scalarA' | 'midB' | 'midA' | 'general';

/**
 * When `x` (the operand that broadcasts) is `out`'s shape with one run of consecutive dimensions set to 1, as an
 * attention map (B,1,H,W) against features (B,C,H,W) or a bias (C) against rows (N,C): the product of those
 * dimensions (mid) and of the dimensions after them (inner). Element i of out then reads element
 * (i / (mid·inner))·inner + i % inner of x, two divisions instead of one per dimension.
 */
export function midBroadcast(x: readonly number[], out: readonly number[]): { mid: number; inner: number } | null {
  const aligned = [...new Array<number>(out.length - x.length).fill(1), ...x];
  const differs = aligned.map((d, k) => d !== out[k]);
  const lo = differs.indexOf(true);
  if (lo < 0) return null;
  const hi = differs.lastIndexOf(true) + 1;
  for (let k = lo; k < hi; k++) if (aligned[k] !== 1) return null;
  const product = (a: number, b: number) => a * b;
  return { mid: out.slice(lo, hi).reduce(product, 1), inner: out.slice(hi).reduce(product, 1) };
}

/** `v4`: 4 elements per invocation as vec4s (not for 'general'; a scalar operand is read as one f32). */
/** The program of a binary map; its callers' labels name its dispatches. */
function binaryProgram(expr: string, mode: Mode, v4: boolean): Program {
  return program(`binary ${mode} ${v4 ? 'vec4' : 'f32'} ${expr}`, () => binarySpec(expr, mode, v4));
}

function binarySpec(expr: string, mode: Mode, v4: boolean): ProgramSpec {
  // The broadcast operand's index in the mid modes (with vec4 lanes i counts vec4s and inner is a multiple of 4).
  const mid = v4 ? '((4u * i) / (p.mid * p.inner) * p.inner + (4u * i) % p.inner) / 4u' : 'i / (p.mid * p.inner) * p.inner + i % p.inner';
  const index = {
    same: 'let ia = i; let ib = i;',
    scalarB: 'let ia = i; let ib = 0u;',
    scalarA: 'let ia = 0u; let ib = i;',
    midB: `let ia = i; let ib = ${mid};`,
    midA: `let ia = ${mid}; let ib = i;`,
    general: `var rem = i; var ia = 0u; var ib = 0u;
  for (var d = i32(p.ndim) - 1; d >= 0; d--) {
    let k = u32(d);
    let size = p.shape[k / 4u][k % 4u];
    let c = rem % size;
    rem = rem / size;
    ia += c * p.sa[k / 4u][k % 4u];
    ib += c * p.sb[k / 4u][k % 4u];
  }`,
  }[mode];
  const aType = v4 && mode !== 'scalarA' ? 'vec4f' : 'f32';
  const bType = v4 && mode !== 'scalarB' ? 'vec4f' : 'f32';
  const body = v4
    ? `let av = A[ia]; let bv = B[ib]; var o: vec4f;
  ${perComponent((c) => `{ let a = av${aType === 'f32' ? '' : `.${c}`}; let b = bv${bType === 'f32' ? '' : `.${c}`}; o.${c} = ${expr}; }`)}
  O[i] = o;`
    : `let a = A[ia];
  let b = B[ib];
  O[i] = ${expr};`;
  return {
    name: 'binary',
    inputs: { A: aType, B: bType },
    outputs: { O: v4 ? 'vec4f' : 'f32' },
    uniforms: { n: 'u32', ndim: 'u32', s0: 'f32', mid: 'u32', inner: 'u32', shape: 'vec4u[2]', sa: 'vec4u[2]', sb: 'vec4u[2]' },
    workgroupSize: WG,
    flat: true,
    body: `if (i >= p.n) { return; }\n  ${index}\n  ${body}`,
  };
}

/**
 * O = f(a, b) with broadcasting, where `expr` is a WGSL f32 expression of `a`, `b` and the scalar `p.s0`.
 * Example: binaryMapKernel('a * b', x, y).
 */
export function binaryMapKernel(expr: string, a: Tensor, b: Tensor, s0 = 0, label = 'binary'): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  if (shape.length > MAX_DIMS) throw new Error(`${label}: at most ${MAX_DIMS} dimensions`);
  const out = Tensor.empty(shape);
  const midOf = (x: Tensor, other: Tensor) => (sameShape(other.shape, shape) ? midBroadcast(x.shape, shape) : null);
  const [midB, midA] = [midOf(b, a), midOf(a, b)];
  const mode: Mode =
    sameShape(a.shape, shape) && sameShape(b.shape, shape)
      ? 'same'
      : b.size === 1 && sameShape(a.shape, shape)
        ? 'scalarB'
        : a.size === 1 && sameShape(b.shape, shape)
          ? 'scalarA'
          : midB
            ? 'midB'
            : midA
              ? 'midA'
              : 'general';
  const { mid, inner } = midB ?? midA ?? { mid: 1, inner: 1 };
  const lanes = mode === 'general' || ((mode === 'midA' || mode === 'midB') && inner % 4 !== 0) ? 1 : vectorLanes(out.size);
  const binary = binaryProgram(expr, mode, lanes === 4);
  const uniforms = (n: number) => ({
    n: n / lanes,
    ndim: shape.length,
    s0,
    mid,
    inner,
    shape,
    sa: broadcastStrides(a.shape, shape),
    sb: broadcastStrides(b.shape, shape),
  });
  if (Math.max(a.bytes, b.bytes, out.bytes) <= engine().rt.maxBinding) {
    binary.dispatchFlat(out.size / lanes, { A: a, B: b, O: out }, uniforms(out.size), label);
    return out;
  }
  if (mode === 'general' || mode === 'midA' || mode === 'midB') {
    out.dispose();
    throw new LimitError(`${label}: broadcasting [${a.shape}] with [${b.shape}] exceeds one storage binding; not supported`);
  }
  forEachChunk(out.size, (off, n) =>
    binary.dispatchFlat(
      n / lanes,
      { A: mode === 'scalarA' ? a : a.binding(off, n), B: mode === 'scalarB' ? b : b.binding(off, n), O: out.binding(off, n) },
      uniforms(n),
      label,
    ),
  );
  return out;
}

const fillProgram = new Program({
  name: 'fill',
  outputs: { O: 'f32' },
  uniforms: { n: 'u32', v: 'f32' },
  workgroupSize: WG,
  flat: true,
  body: 'if (i < p.n) { O[i] = p.v; }',
});

/** Fills a tensor with a constant. */
export function fillKernel(shape: readonly number[], value: number): Tensor {
  const out = Tensor.empty(shape);
  forEachChunk(out.size, (off, n) => fillProgram.dispatchFlat(n, { O: out.binding(off, n) }, { n, v: value }));
  return out;
}
