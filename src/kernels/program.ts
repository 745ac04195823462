/**
 * The one description of a compute kernel: named storage bindings, a list of uniform fields and the body of `main`.
 * From it come the WGSL binding declarations, the uniform struct and the packing of its values, the flat invocation
 * index over a 2-D grid of workgroups, and the splitting of long element ranges across storage bindings. A kernel
 * writes only its body (and helper functions in `header`); hand-tuned bodies (convolution, matmul, attention) stay
 * hand-written inside the same description.
 *
 *   const square = new Program({
 *     name: 'square', inputs: { X: 'f32' }, outputs: { O: 'f32' }, uniforms: { n: 'u32' },
 *     workgroupSize: 256, flat: true, body: 'if (i < p.n) { O[i] = X[i] * X[i]; }',
 *   });
 *   square.dispatchFlat(x.size, { X: x, O: out }, { n: x.size });
 *
 * Each program has a shader key, its name and every parameter that changes its WGSL; the pipeline cache compiles
 * one pipeline per key. A kernel whose code depends on parameters builds it with `program(key, make)`, once per key;
 * a key never names two texts (checked whenever a program is built, and at every use while the tests turn on
 * `checkShaderKeysForTests`).
 */
import { engine } from '../tensor/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';

/** Element types of storage arrays. */
export type StorageType = 'f32' | 'u32' | 'i32' | 'vec2f' | 'vec4f' | 'vec2u' | 'vec4u' | 'atomic<u32>' | 'atomic<i32>';

/** Types of uniform fields: scalars, vectors, and arrays of 4-vectors (`vec4u[2]` is `array<vec4u, 2>`). */
export type UniformType = 'u32' | 'i32' | 'f32' | 'vec2u' | 'vec4u' | 'vec4f' | `vec4u[${number}]` | `vec4f[${number}]`;

export interface ProgramSpec {
  /** Label in errors and timings. */
  name: string;
  /** The shader key (default: name): the name and every parameter that changes the WGSL. */
  key?: string;
  /** Read-only storage bindings in binding order: name → element type (arrays of it). */
  inputs?: Record<string, StorageType>;
  /** Read-write storage bindings, bound after the inputs. */
  outputs?: Record<string, StorageType>;
  /** Fields of the uniform struct `p`, bound last. */
  uniforms?: Record<string, UniformType>;
  workgroupSize: number | readonly [number, number?, number?];
  /** `enable` directives, e.g. ['subgroups']; with subgroups `sid` (lane) and `ssize` are in scope. */
  enables?: readonly string[];
  /** WGSL before main: constants, helper functions, workgroup variables. */
  header?: string;
  /**
   * The body of main. In scope: wid, nwg, lid (vec3u), li (local index), gid (global id); with `flat`, `i` is the
   * flat invocation index over the 2-D grid of workgroups that dispatchFlat makes.
   */
  body: string;
  flat?: boolean;
}

export type Binding = Tensor | BufferRange | GPUBuffer;
export type UniformValue = number | readonly number[];

interface Field {
  name: string;
  type: UniformType;
  offset: number;
  /** 32-bit words it occupies. */
  words: number;
  kind: 'u32' | 'i32' | 'f32';
}

const ALIGN: Record<string, number> = { u32: 4, i32: 4, f32: 4, vec2u: 8, vec4u: 16, vec4f: 16 };

/** Lays out the uniform struct as WGSL's uniform address space requires (vec4 and arrays 16-byte aligned). */
function layout(uniforms: Record<string, UniformType>): { fields: Field[]; bytes: number } {
  const fields: Field[] = [];
  let offset = 0;
  for (const [name, type] of Object.entries(uniforms)) {
    const array = /^(vec4[uf])\[(\d+)\]$/.exec(type);
    const base = array ? array[1] : type;
    const align = array ? 16 : ALIGN[base];
    const words = array ? 4 * Number(array[2]) : base.startsWith('vec4') ? 4 : base === 'vec2u' ? 2 : 1;
    offset = Math.ceil(offset / align) * align;
    const kind = base.endsWith('f') || base === 'f32' ? 'f32' : base === 'i32' ? 'i32' : 'u32';
    fields.push({ name, type, offset, words, kind });
    offset += 4 * words;
  }
  return { fields, bytes: Math.max(16, Math.ceil(offset / 16) * 16) };
}

function wgslType(t: UniformType): string {
  const array = /^(vec4[uf])\[(\d+)\]$/.exec(t);
  return array ? `array<${array[1]}, ${array[2]}>` : t;
}

/** The WGSL text of every shader key built so far. */
const textOfKey = new Map<string, string>();
/** The programs of `program()`, by key. */
const programs = new Map<string, Program>();
let rebuildEveryUse = false;

/**
 * Tests: `program()` rebuilds the WGSL at every use and compares it with the key's, so that a key that misses a
 * parameter fails the test that uses the parameter (production builds it once per key).
 */
export function checkShaderKeysForTests(on: boolean): void {
  rebuildEveryUse = on;
}

/** The program of shader `key`, built by `make` at the key's first use (the key must say everything that makes the WGSL). */
export function program(key: string, make: () => ProgramSpec): Program {
  const known = programs.get(key);
  if (known && !rebuildEveryUse) return known;
  const built = new Program({ ...make(), key }); // throws when the key names another text
  if (known) return known;
  programs.set(key, built);
  return built;
}

export class Program {
  readonly key: string;
  readonly code: string;
  readonly workgroupSize: readonly [number, number, number];
  private readonly fields: Field[];
  private readonly uniformBytes: number;
  private readonly order: string[];

  constructor(readonly spec: ProgramSpec) {
    const ws = typeof spec.workgroupSize === 'number' ? [spec.workgroupSize] : spec.workgroupSize;
    this.workgroupSize = [ws[0], ws[1] ?? 1, ws[2] ?? 1];
    const { fields, bytes } = layout(spec.uniforms ?? {});
    this.fields = fields;
    this.uniformBytes = bytes;
    const inputs = Object.entries(spec.inputs ?? {});
    const outputs = Object.entries(spec.outputs ?? {});
    this.order = [...inputs, ...outputs].map(([n]) => n);
    const decls = [
      ...inputs.map(([n, t], i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<${t}>;`),
      ...outputs.map(([n, t], i) => `@group(0) @binding(${inputs.length + i}) var<storage, read_write> ${n}: array<${t}>;`),
    ];
    if (fields.length) {
      decls.unshift(`struct P { ${fields.map((f) => `${f.name}: ${wgslType(f.type)}`).join(', ')} }`);
      decls.push(`@group(0) @binding(${this.order.length}) var<uniform> p: P;`);
    }
    const subgroups = spec.enables?.includes('subgroups');
    const builtins = [
      '@builtin(workgroup_id) wid: vec3u',
      '@builtin(num_workgroups) nwg: vec3u',
      '@builtin(local_invocation_id) lid: vec3u',
      '@builtin(local_invocation_index) li: u32',
      '@builtin(global_invocation_id) gid: vec3u',
      ...(subgroups ? ['@builtin(subgroup_invocation_id) sid: u32', '@builtin(subgroup_size) ssize: u32'] : []),
    ];
    const [x, y, z] = this.workgroupSize;
    const flat = spec.flat ? `let i = (wid.x + wid.y * nwg.x) * ${x * y * z}u + li;\n  ` : '';
    this.code = [
      ...(spec.enables ?? []).map((e) => `enable ${e};`),
      ...decls,
      spec.header ?? '',
      `@compute @workgroup_size(${x}, ${y}, ${z})`,
      `fn main(${builtins.join(', ')}) {\n  ${flat}${spec.body.trim()}\n}`,
    ].join('\n');
    this.key = spec.key ?? spec.name;
    const known = textOfKey.get(this.key);
    if (known === undefined) textOfKey.set(this.key, this.code);
    else if (known !== this.code)
      throw new Error(`kernel '${spec.name}': shader key '${this.key}' already names another WGSL text (a parameter that changes the code is missing from the key)`);
  }

  /** Invocations per workgroup. */
  get groupSize(): number {
    return this.workgroupSize[0] * this.workgroupSize[1] * this.workgroupSize[2];
  }

  /** The uniform values packed as the struct's layout says; missing fields are zero. */
  pack(values: Record<string, UniformValue>): Uint8Array {
    const view = new DataView(new ArrayBuffer(this.uniformBytes));
    for (const name of Object.keys(values))
      if (!this.fields.some((f) => f.name === name)) throw new Error(`kernel '${this.spec.name}': no uniform field '${name}'`);
    for (const f of this.fields) {
      const v = values[f.name] ?? 0;
      const list = typeof v === 'number' ? [v] : v;
      if (list.length > f.words) throw new Error(`kernel '${this.spec.name}': ${f.name} takes at most ${f.words} values, got ${list.length}`);
      list.forEach((x, k) => {
        const at = f.offset + 4 * k;
        if (f.kind === 'f32') view.setFloat32(at, x, true);
        else if (f.kind === 'i32') view.setInt32(at, x, true);
        else view.setUint32(at, x >>> 0, true);
      });
    }
    return new Uint8Array(view.buffer);
  }

  /** Records one dispatch with the named bindings and uniform values; `label` (default: the name) in errors and timings. */
  dispatch(
    bindings: Record<string, Binding>,
    uniforms: Record<string, UniformValue>,
    workgroups: readonly [number, number?, number?],
    label = this.spec.name,
  ): void {
    const buffers = this.order.map((name) => {
      const b = bindings[name];
      if (!b) throw new Error(`kernel '${this.spec.name}': binding '${name}' is missing`);
      return isTensor(b) ? b.buffer : b;
    });
    const inputs = Object.keys(this.spec.inputs ?? {}).length;
    engine().rt.dispatch({
      label,
      key: this.key,
      code: this.code,
      buffers,
      params: this.fields.length ? this.pack(uniforms) : undefined,
      workgroups: [workgroups[0], workgroups[1], workgroups[2]],
      written: buffers.map((_, i) => i).filter((i) => i >= inputs),
    });
  }

  /** Dispatches enough workgroups for `invocations` invocations of a flat kernel (a 2-D grid beyond 65535). */
  dispatchFlat(invocations: number, bindings: Record<string, Binding>, uniforms: Record<string, UniformValue>, label = this.spec.name): void {
    if (!this.spec.flat) throw new Error(`kernel '${this.spec.name}' is not flat`);
    this.dispatch(bindings, uniforms, flatGrid(Math.ceil(invocations / this.groupSize)), label);
  }
}

function isTensor(b: Binding): b is Tensor {
  return (b as Tensor).isTensor === true;
}

/** Most workgroups per grid dimension that every adapter allows. */
export const MAX_GRID = 65535;

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** Workgroup counts covering `count` workgroups in a 2-D grid (x ≤ 65535): the grid of flat kernels. */
export function flatGrid(count: number): [number, number, number] {
  if (count <= MAX_GRID) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_GRID);
  return [Math.ceil(count / y), y, 1];
}

/** Offsets of storage bindings must be multiples of 256 bytes = 64 float32 elements. */
export const ALIGN_ELEMS = 64;

/** Elements per chunk when a tensor exceeds one binding (a multiple of 64 keeps offsets 256-byte aligned). */
export function chunkElements(): number {
  return Math.floor(engine().rt.maxBinding / 4 / ALIGN_ELEMS) * ALIGN_ELEMS;
}

/** Calls fn(offset, count) over [0, n) in chunks that fit one storage binding (one call when n fits). */
export function forEachChunk(n: number, fn: (offset: number, count: number) => void): void {
  const c = chunkElements();
  for (let off = 0; off < n; off += c) fn(off, Math.min(c, n - off));
}

export interface AlignedRange {
  range: BufferRange;
  /** Index of the requested first element inside the bound range. */
  base: number;
}

/** Binds elements [offset, offset + count) of t, starting the binding at the aligned element at or before offset. */
export function alignedRange(t: Tensor, offset: number, count: number): AlignedRange {
  const start = Math.floor(offset / ALIGN_ELEMS) * ALIGN_ELEMS;
  return { range: t.binding(start, offset + count - start), base: offset - start };
}

/** Elements one binding may hold, keeping room for the alignment slack of alignedRange. */
export function bindableElements(): number {
  return Math.floor(engine().rt.maxBinding / 4) - ALIGN_ELEMS;
}

/**
 * Splits `count` items (planes, rows, samples) of `itemElems` elements each into runs that fit one binding with
 * alignment slack: fn(first, items) for each run. Throws when a single item exceeds one binding.
 */
export function forEachItemRun(count: number, itemElems: number, what: string, fn: (first: number, items: number) => void): void {
  const per = Math.floor(bindableElements() / Math.max(1, itemElems));
  if (per < 1) throw new RangeError(`${what}: one item of ${itemElems} elements exceeds a storage binding`);
  for (let first = 0; first < count; first += per) fn(first, Math.min(per, count - first));
}
