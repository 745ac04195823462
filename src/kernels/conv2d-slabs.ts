/**
 * Splits an (N, C, plane) tensor into slabs that each fit one storage binding: whole groups of samples when a
 * sample fits, otherwise channel ranges of one sample. addInto adds the partial output of one input slab. Each slab is bound by alignedRange (the offset rounded down
 * to the storage offset alignment) and the kernel is handed the remainder as `base`.
 */
import { engine } from '../tensor/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements, forEachChunk, Program } from './program.ts';
import { vectorLanes } from './elementwise.ts';

export interface Slab {
  /** Samples [nLo, nHi) and channels [cLo, cHi) of every one of them are bound. */
  nLo: number;
  nHi: number;
  cLo: number;
  cHi: number;
  range: BufferRange;
  /** Element offset of (nLo, cLo, 0) inside the bound range. */
  base: number;
}

/** `align`: channel ranges start at multiples of it when one binding holds at least that many channels. */
export function planSlabs(t: Tensor, n: number, c: number, plane: number, what: string, align = 1): Slab[] {
  const limit = bindableElements();
  const sample = c * plane;
  const make = (nLo: number, nHi: number, cLo: number, cHi: number): Slab => {
    const count = nHi - nLo > 1 ? (nHi - nLo) * sample : (cHi - cLo) * plane;
    return { nLo, nHi, cLo, cHi, ...alignedRange(t, nLo * sample + cLo * plane, count) };
  };
  if (t.size * 4 <= engine().rt.maxBinding) return [{ nLo: 0, nHi: n, cLo: 0, cHi: c, range: t.binding(), base: 0 }];
  const slabs: Slab[] = [];
  if (sample <= limit) {
    const per = Math.floor(limit / sample);
    for (let lo = 0; lo < n; lo += per) slabs.push(make(lo, Math.min(n, lo + per), 0, c));
    return slabs;
  }
  const fit = Math.floor(limit / plane);
  const channels = Math.floor(fit / align) * align || fit;
  if (channels < 1) throw new LimitError(`${what}: one ${plane}-element channel plane exceeds one storage binding`);
  for (let s = 0; s < n; s++) for (let lo = 0; lo < c; lo += channels) slabs.push(make(s, s + 1, lo, Math.min(c, lo + channels)));
  return slabs;
}

const addIntoPrograms = ([false, true] as const).map((v4) => new Program({
  name: 'conv2d_add_slab',
  inputs: { T: v4 ? 'vec4f' : 'f32' },
  outputs: { O: v4 ? 'vec4f' : 'f32' },
  uniforms: { n: 'u32', relu: 'u32' },
  workgroupSize: 256,
  flat: true,
  body: `if (i >= p.n) { return; }
  var r = O[i] + T[i];
  if (p.relu == 1u) { r = max(r, ${v4 ? 'vec4f(0.0)' : '0.0'}); }
  O[i] = r;`,
}));

/** out += partial (same shape), then ReLU when `relu`: adds the partial output of one input slab. */
export function addInto(out: Tensor, partial: Tensor, relu: boolean): void {
  const lanes = vectorLanes(out.size);
  const program = addIntoPrograms[lanes === 4 ? 1 : 0];
  forEachChunk(out.size, (off, n) =>
    program.dispatchFlat(n / lanes, { T: partial.binding(off, n), O: out.binding(off, n) }, { n: n / lanes, relu: relu ? 1 : 0 }));
}
