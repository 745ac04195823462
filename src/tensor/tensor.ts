/**
 * GPU tensors: float32 (or u32 for indices), contiguous row-major layout, one pooled GPU buffer each.
 * A tensor counts references: dispose() releases one, and saved tensors of the autograd graph hold their own.
 */
import { engine, track } from './engine.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { LimitError } from '../runtime/errors.ts';

export type DType = 'f32' | 'u32';

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: readonly number[], what = 'shape'): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what} [${shape.join(', ')}] must hold non-negative integers`);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * A recorded op of the autograd tape (src/autograd): the tensor that an op produced points at it. Declared here so
 * that the tensor layer does not import the layer above it.
 */
export interface GradNode {
  name: string;
  inputs: Tensor[];
  outputs: Tensor[];
  /** Tensors the backward needs; retained until the graph is released (inputs are not retained otherwise). */
  saved: Tensor[];
  /**
   * Given the gradients of the outputs (null where none reached) and whether each input needs a gradient, returns
   * those of the inputs (null for the others, whose gradient functions do not run). The tape builds it from the
   * op's rule (src/autograd/tape.ts) and frees the tensors it creates and does not return.
   */
  backward: (grads: (Tensor | null)[], needs: boolean[]) => (Tensor | null)[];
  released: boolean;
}

let nextId = 1;

interface Storage {
  buffer: GPUBuffer;
  refs: number;
}

export class Tensor {
  readonly isTensor = true;
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
  private storage: Storage | null;
  private refs = 1;
  private ownerReleased = false;
  requiresGrad = false;
  /** Accumulated gradient (leaves that require grad). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it is part of a recorded graph. */
  node: GradNode | null = null;
  name = '';

  /** Allocates an uninitialised tensor, or a view of `shares` (same size) with another shape. */
  constructor(shape: readonly number[], dtype: DType = 'f32', shares?: Tensor) {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.dtype = dtype;
    if (shares) {
      if (shares.size !== this.size) throw new Error(`cannot view [${shares.shape.join(', ')}] as [${shape.join(', ')}]`);
      this.storage = shares.liveStorage();
      this.storage.refs++;
    } else {
      let buffer: GPUBuffer;
      try {
        buffer = engine().rt.pool.acquire(this.size * 4, `a tensor of shape [${shape.join(', ')}]`);
      } catch (e) {
        if (e instanceof LimitError) throw e;
        throw new LimitError(`allocating a tensor of shape [${shape.join(', ')}] failed: ${(e as Error).message}`);
      }
      this.storage = { buffer, refs: 1 };
    }
    track(this);
  }

  private liveStorage(): Storage {
    if (!this.storage) throw new Error(`tensor ${this.name || '#' + this.id} [${this.shape.join(', ')}] was used after dispose()`);
    return this.storage;
  }

  /** The same data with another shape of equal size (no copy; not recorded for autograd). */
  view(shape: readonly number[]): Tensor {
    return new Tensor(shape, this.dtype, this);
  }

  /** This data with another shape of equal size, taking over this handle (which is disposed): for reshaping results. */
  reshaped(shape: readonly number[]): Tensor {
    if (sameShape(shape, this.shape)) return this;
    const out = this.view(shape);
    this.dispose();
    return out;
  }

  static empty(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    return new Tensor(shape, dtype);
  }

  static zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const t = new Tensor(shape, dtype);
    if (t.size) engine().rt.clear(t.buffer, 0, t.bytes);
    return t;
  }

  static fromArray(data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = shapeSize(shape);
    if (data.length !== n) throw new Error(`fromArray: ${data.length} values do not fill shape [${shape.join(', ')}] (${n})`);
    const t = new Tensor(shape, dtype);
    const arr = dtype === 'u32' ? Uint32Array.from(data) : data instanceof Float32Array ? data : Float32Array.from(data);
    if (n) engine().rt.upload(t.buffer, 0, arr);
    return t;
  }

  static full(shape: readonly number[], value: number): Tensor {
    return Tensor.fromArray(new Float32Array(shapeSize(shape)).fill(value), shape);
  }

  static scalar(value: number): Tensor {
    return Tensor.fromArray([value], []);
  }

  get buffer(): GPUBuffer {
    return this.liveStorage().buffer;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get bytes(): number {
    return this.size * 4;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A byte range of this tensor's buffer, in elements. */
  binding(offset = 0, count = this.size - offset): BufferRange {
    return { buffer: this.buffer, offset: offset * 4, size: Math.max(4, count * 4) };
  }

  /** A second owned handle on the same data (dispose each handle once). */
  alias(): Tensor {
    return new Tensor(this.shape, this.dtype, this);
  }

  /** Adds a reference (autograd's saved tensors); undo with release(). */
  retain(): this {
    this.liveStorage();
    this.refs++;
    return this;
  }

  /**
   * Releases the owner's reference. Idempotent: an op that disposes its temporary and an enclosing tidy()
   * that disposes it again release it once, so a copy saved for backward stays alive.
   */
  dispose(): void {
    if (this.ownerReleased) return;
    this.ownerReleased = true;
    this.release();
  }

  /** Drops one reference taken with retain() (or the owner's, through dispose()). */
  release(): void {
    if (!this.storage) return;
    if (--this.refs > 0) return;
    if (--this.storage.refs === 0) engine().rt.pool.release(this.storage.buffer);
    this.storage = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** Reads the values back (after all recorded work). */
  async data(): Promise<Float32Array> {
    if (this.size === 0) return new Float32Array(0);
    const ab = await engine().rt.read(this.buffer, 0, this.bytes);
    return this.dtype === 'u32' ? Float32Array.from(new Uint32Array(ab)) : new Float32Array(ab);
  }

  async u32(): Promise<Uint32Array> {
    return new Uint32Array(await engine().rt.read(this.buffer, 0, this.bytes));
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got [${this.shape.join(', ')}]`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(${this.name || '#' + this.id}, [${this.shape.join(', ')}], ${this.dtype})`;
  }
}

/** A trainable leaf tensor. */
export function parameter(t: Tensor, name = ''): Tensor {
  t.requiresGrad = true;
  t.name = name;
  for (const s of engine().scopes) s.delete(t);
  return t;
}
