/**
 * Splits an (N, C, plane) tensor into slabs that each fit one storage binding: whole groups of samples when a
 * sample fits, otherwise channel ranges of one sample. Each slab is bound by alignedRange (the offset rounded down
 * to the storage offset alignment) and the kernel is handed the remainder as `base`. addInto adds the partial
 * output of one input slab to an output slab.
 */
import { engine } from '../tensor/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { BufferRange } from '../runtime/runtime.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements, Program } from './program.ts';

export interface Slab {
  /** Samples [nLo, nHi) and channels [cLo, cHi) of every one of them are bound. */
  nLo: number;
  nHi: number;
  cLo: number;
  cHi: number;
  range: BufferRange;
  /** Element offset of (nLo, cLo, 0) inside the bound range. */
  base: number;
  /** Elements of the slab (from base on). */
  count: number;
}

/** `align`: channel ranges start at multiples of it when one binding holds at least that many channels. */
export function planSlabs(t: Tensor, n: number, c: number, plane: number, what: string, align = 1): Slab[] {
  const limit = bindableElements();
  const sample = c * plane;
  const make = (nLo: number, nHi: number, cLo: number, cHi: number): Slab => {
    const count = nHi - nLo > 1 ? (nHi - nLo) * sample : (cHi - cLo) * plane;
    return { nLo, nHi, cLo, cHi, count, ...alignedRange(t, nLo * sample + cLo * plane, count) };
  };
  if (t.size * 4 <= engine().rt.maxBinding) return [{ nLo: 0, nHi: n, cLo: 0, cHi: c, range: t.binding(), base: 0, count: t.size }];
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
  key: `conv2d_add_slab ${v4 ? 'vec4' : 'f32'}`,
  inputs: { T: v4 ? 'vec4f' : 'f32', Found: 'u32' },
  outputs: { O: v4 ? 'vec4f' : 'f32' },
  uniforms: { n: 'u32', base: 'u32', perSample: 'u32', relu: 'u32' },
  workgroupSize: 256,
  flat: true,
  body: `if (i >= p.n || Found[${v4 ? '4u * i' : 'i'} / p.perSample] == 0u) { return; }
  var r = O[p.base + i] + T[i];
  if (p.relu == 1u) { r = max(r, ${v4 ? 'vec4f(0.0)' : '0.0'}); }
  O[p.base + i] = r;`,
}));

/**
 * Adds `partial` (the slab's layout from element 0) to the output slab `to`, then ReLU when `relu`; only the
 * output samples whose flag in `found` (one per sample of the slab, written by the convolution) is set.
 */
export function addInto(to: Slab, partial: Tensor, found: Tensor, relu: boolean): void {
  const perSample = to.count / (to.nHi - to.nLo);
  const v4 = to.base % 4 === 0 && perSample % 4 === 0;
  const lanes = v4 ? 4 : 1;
  const uniforms = { n: to.count / lanes, base: to.base / lanes, perSample, relu: relu ? 1 : 0 };
  addIntoPrograms[v4 ? 1 : 0].dispatchFlat(to.count / lanes, { T: partial, Found: found, O: to.range }, uniforms);
}
