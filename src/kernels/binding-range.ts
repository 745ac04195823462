/** Storage bindings of element ranges that need not start on the 256-byte offset alignment. */
import type { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { engine } from '../tensor/engine.ts';

/** Offsets of storage bindings must be multiples of 256 bytes = 64 float32 elements. */
export const ALIGN_ELEMS = 64;

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
