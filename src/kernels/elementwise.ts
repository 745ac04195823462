/**
 * Elementwise kernels: unary maps and binary maps with NumPy broadcasting, given as WGSL expressions.
 * Tensors larger than one storage binding are processed in chunks (same-shape operands only).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { grid1d } from './wgsl.ts';

const WG = 256;
const MAX_DIMS = 8;

/** Elements per chunk when a tensor exceeds one binding (a multiple of 64 keeps offsets 256-byte aligned). */
export function chunkElements(): number {
  return Math.floor(engine().rt.maxBinding / 4 / 64) * 64;
}

/** Calls fn(offset, count) over [0, n) in chunks that fit one storage binding. */
export function forEachChunk(n: number, fn: (offset: number, count: number) => void): void {
  const c = chunkElements();
  for (let off = 0; off < n; off += c) fn(off, Math.min(c, n - off));
}

/**
 * With `v4` each invocation maps 4 consecutive elements, read and written as vec4s (n % 4 == 0): on lavapipe a
 * storage access costs one load per lane whatever its width, so this moves 4× the data per access. The scalar
 * expression is evaluated per component, so any f32 expression works.
 */
/**
 * Elements per invocation of the vectorised kernels (here, Adam and clipping): 4 when n is a multiple of 4 (then
 * so is every chunk of forEachChunk, a multiple of 64 elements), else 1.
 */
export function vectorLanes(n: number): 1 | 4 {
  return n % 4 === 0 ? 4 : 1;
}

function unaryCode(expr: string, v4: boolean): string {
  const type = v4 ? 'vec4f' : 'f32';
  const body = v4 ? `let xv = X[i]; var o: vec4f;
  ${perComponent((c) => `{ let x = xv.${c}; o.${c} = ${expr}; }`)}
  O[i] = o;` : `let x = X[i];
  O[i] = ${expr};`;
  return /* wgsl */ `
struct P { n: u32, s0: f32, s1: f32, _p: u32 }
@group(0) @binding(0) var<storage, read> X: array<${type}>;
@group(0) @binding(1) var<storage, read_write> O: array<${type}>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  ${body}
}`;
}

function perComponent(line: (c: string) => string): string {
  return ['x', 'y', 'z', 'w'].map(line).join('\n  ');
}

/**
 * O = f(x) where `expr` is a WGSL f32 expression of `x` and the scalars `p.s0`, `p.s1`.
 * Example: unaryMap('max(x, 0.0)', t).
 */
export function unaryMap(expr: string, x: Tensor, s0 = 0, s1 = 0, label = 'unary'): Tensor {
  const out = Tensor.empty(x.shape);
  const lanes = vectorLanes(x.size);
  const code = unaryCode(expr, lanes === 4);
  forEachChunk(x.size, (off, n) => {
    engine().rt.dispatch({
      label,
      code,
      buffers: [x.binding(off, n), out.binding(off, n)],
      params: new Params().u32(n / lanes).f32(s0, s1).u32(0).bytes,
      workgroups: grid1d(Math.ceil(n / lanes / WG)),
    });
  });
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

type Mode = 'same' | 'scalarB' | 'scalarA' | 'general';

/** `v4`: 4 elements per invocation as vec4s (not for 'general'; a scalar operand is read as one f32). */
function binaryCode(expr: string, mode: Mode, v4: boolean): string {
  const index = {
    same: 'let ia = i; let ib = i;',
    scalarB: 'let ia = i; let ib = 0u;',
    scalarA: 'let ia = 0u; let ib = i;',
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
  return /* wgsl */ `
struct P { n: u32, ndim: u32, s0: f32, _p: u32, shape: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2> }
@group(0) @binding(0) var<storage, read> A: array<${aType}>;
@group(0) @binding(1) var<storage, read> B: array<${bType}>;
@group(0) @binding(2) var<storage, read_write> O: array<${v4 ? 'vec4f' : 'f32'}>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  ${index}
  ${body}
}`;
}

function padded(v: readonly number[]): number[] {
  return [...v, ...new Array(MAX_DIMS - v.length).fill(0)];
}

/**
 * O = f(a, b) with broadcasting, where `expr` is a WGSL f32 expression of `a`, `b` and the scalar `p.s0`.
 * Example: binaryMap('a * b', x, y).
 */
export function binaryMap(expr: string, a: Tensor, b: Tensor, s0 = 0, label = 'binary'): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  if (shape.length > MAX_DIMS) throw new Error(`${label}: at most ${MAX_DIMS} dimensions`);
  const out = Tensor.empty(shape);
  const mode: Mode =
    sameShape(a.shape, shape) && sameShape(b.shape, shape)
      ? 'same'
      : b.size === 1 && sameShape(a.shape, shape)
        ? 'scalarB'
        : a.size === 1 && sameShape(b.shape, shape)
          ? 'scalarA'
          : 'general';
  const lanes = mode === 'general' ? 1 : vectorLanes(out.size);
  const code = binaryCode(expr, mode, lanes === 4);
  const paramsFor = (n: number) =>
    new Params()
      .u32(n / lanes, shape.length)
      .f32(s0)
      .u32(0, ...padded(shape), ...padded(broadcastStrides(a.shape, shape)), ...padded(broadcastStrides(b.shape, shape))).bytes;
  const rt = engine().rt;
  if (Math.max(a.bytes, b.bytes, out.bytes) <= rt.maxBinding) {
    rt.dispatch({ label, code, buffers: [a.buffer, b.buffer, out.buffer], params: paramsFor(out.size), workgroups: grid1d(Math.ceil(out.size / lanes / WG)) });
    return out;
  }
  if (mode === 'general') {
    out.dispose();
    throw new LimitError(`${label}: broadcasting [${a.shape}] with [${b.shape}] exceeds one storage binding; not supported`);
  }
  forEachChunk(out.size, (off, n) => {
    rt.dispatch({
      label,
      code,
      buffers: [mode === 'scalarA' ? a.buffer : a.binding(off, n), mode === 'scalarB' ? b.buffer : b.binding(off, n), out.binding(off, n)],
      params: paramsFor(n),
      workgroups: grid1d(Math.ceil(n / lanes / WG)),
    });
  });
  return out;
}

/** Fills a tensor with a constant. */
export function fill(shape: readonly number[], value: number): Tensor {
  const out = Tensor.empty(shape);
  const code = /* wgsl */ `
struct P { n: u32, v: f32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read_write> O: array<f32>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i < p.n) { O[i] = p.v; }
}`;
  forEachChunk(out.size, (off, n) => {
    engine().rt.dispatch({ label: 'fill', code, buffers: [out.binding(off, n)], params: new Params().u32(n).f32(value).u32(0, 0).bytes, workgroups: grid1d(Math.ceil(n / WG)) });
  });
  return out;
}
