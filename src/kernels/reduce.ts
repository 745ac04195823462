/**
 * Sum reduction over any set of axes. Many outputs: one invocation each. Few outputs: one workgroup reduces one
 * output (or a part of it when the reduced extent is large; the parts are then summed by a second pass) with a tree
 * in workgroup memory.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { flatGrid, Program, program, type ProgramSpec } from './program.ts';

const WG = 256;
const MAX_DIMS = 8;

/** Row-major strides of `shape` (also the float64 references'). */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A WGSL function from a flat index over the kept (`k`) or reduced (`r`) axes to its offset, by their shape and strides. */
const offsetFn = (fn: string, v: string, acc: string, axes: 'k' | 'r') => /* wgsl */ `
fn ${fn}(${v}: u32) -> u32 {
  var rem = ${v};
  var ${acc} = 0u;
  for (var d = i32(p.n${axes}) - 1; d >= 0; d--) {
    let k = u32(d);
    let size = p.${axes}shape[k / 4u][k % 4u];
    ${acc} += (rem % size) * p.${axes}stride[k / 4u][k % 4u];
    rem = rem / size;
  }
  return ${acc};
}`;

const HELPERS = offsetFn('keptOffset', 'o', 'base', 'k') + offsetFn('reducedOffset', 'r', 'off', 'r');

/** How reduced element r of an output is addressed: a plain offset, one stride, or the general index walk. */
function reducedTerm(innerContiguous: boolean, single: boolean): string {
  if (innerContiguous) return 'X[base + r]';
  if (single) return 'X[base + r * p.rstride[0].x]';
  return 'X[base + reducedOffset(r)]';
}

/**
 * Many outputs (`perOutput`): one invocation per output sums its reduced elements serially (no barriers: they are
 * very costly on software adapters, and neighbouring invocations read neighbouring memory when the kept axes are
 * innermost). Few outputs: one workgroup per (output, part) with a tree in workgroup memory.
 */
function sumProgram(perOutput: boolean, innerContiguous: boolean, single: boolean): Program {
  return program(`sum ${perOutput} ${innerContiguous} ${single}`, () => sumProgramSpec(perOutput, innerContiguous, single));
}

function sumProgramSpec(perOutput: boolean, innerContiguous: boolean, single: boolean): ProgramSpec {
  const term = reducedTerm(innerContiguous, single);
  const body = perOutput
    ? /* wgsl */ `if (i >= p.nOut) { return; }
  let base = keptOffset(i);
  var acc = 0.0;
  for (var r = 0u; r < p.R; r++) {
    acc += ${term};
  }
  O[i] = acc;`
    : /* wgsl */ `let w = wid.x + wid.y * nwg.x;
  if (w >= p.nOut * p.parts) { return; }
  let o = w / p.parts;
  let part = w % p.parts;
  let base = keptOffset(o);
  let r0 = part * p.chunk;
  let r1 = min(p.R, r0 + p.chunk);
  var acc = 0.0;
  for (var r = r0 + li; r < r1; r += ${WG}u) {
    acc += ${term};
  }
  tree[li] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { tree[li] += tree[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { O[w] = tree[0]; }`;
  return {
    name: 'sum',
    inputs: { X: 'f32' },
    outputs: { O: 'f32' },
    uniforms: {
      nOut: 'u32', R: 'u32', chunk: 'u32', parts: 'u32', nk: 'u32', nr: 'u32',
      kshape: 'vec4u[2]', kstride: 'vec4u[2]', rshape: 'vec4u[2]', rstride: 'vec4u[2]',
    },
    workgroupSize: WG,
    flat: perOutput,
    header: perOutput ? HELPERS : `${HELPERS}\nvar<workgroup> tree: array<f32, ${WG}>;`,
    body,
  };
}

/** Sums x over `axes` (no keepdim): the result has the remaining dimensions in order. */
export function sumKernel(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.shape.length;
  const set = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  for (const a of set) if (a < 0 || a >= rank) throw new Error(`sum: axis out of range for shape [${x.shape}]`);
  if (rank > MAX_DIMS) throw new Error(`sum: at most ${MAX_DIMS} dimensions`);
  if (x.bytes > engine().rt.maxBinding) throw new LimitError(`sum over a tensor of ${x.bytes} bytes exceeds one storage binding`);
  const strides = contiguousStrides(x.shape);
  const outShape = x.shape.filter((_, i) => !set.has(i));
  // Neighbouring axes that are both kept or both reduced merge into one (size-1 axes drop out): fewer index
  // divisions per element, and a single reduced axis needs none (a plain stride).
  const kept: Array<[number, number]> = []; // [size, stride]
  const red: Array<[number, number]> = [];
  let prevReduced: boolean | null = null;
  for (let i = 0; i < rank; i++) {
    if (x.shape[i] === 1) continue;
    const reduced = set.has(i);
    const list = reduced ? red : kept;
    if (prevReduced === reduced) {
      const last = list[list.length - 1];
      list[list.length - 1] = [last[0] * x.shape[i], strides[i]];
    } else list.push([x.shape[i], strides[i]]);
    prevReduced = reduced;
  }
  const nOut = kept.reduce((n, [size]) => n * size, 1);
  const R = red.reduce((n, [size]) => n * size, 1);
  if (nOut === 0 || R === 0) return Tensor.zeros(outShape);
  // Reduced axes form the contiguous tail: offsets are plain r.
  const innerContiguous = red.length === 1 && red[0][1] === 1;
  const single = red.length === 1;
  const perOutput = nOut >= WG;
  // Split long reductions so that enough workgroups run in parallel.
  const parts = perOutput ? 1 : Math.max(1, Math.min(Math.ceil(R / 4096), Math.ceil(256 / nOut)));
  const chunk = Math.ceil(R / parts);
  const partial = Tensor.empty(parts === 1 ? outShape : [nOut, parts]);
  const prog = sumProgram(perOutput, innerContiguous, single);
  const uniforms = {
    nOut, R, chunk, parts, nk: kept.length, nr: red.length,
    kshape: kept.map(([size]) => size), kstride: kept.map(([, stride]) => stride),
    rshape: red.map(([size]) => size), rstride: red.map(([, stride]) => stride),
  };
  if (perOutput) prog.dispatchFlat(nOut, { X: x, O: partial }, uniforms);
  else prog.dispatch({ X: x, O: partial }, uniforms, flatGrid(nOut * parts));
  if (parts === 1) return partial;
  const total = sumKernel(partial, [1]);
  partial.dispose();
  const out = total.view(outShape);
  total.dispose();
  return out;
}
