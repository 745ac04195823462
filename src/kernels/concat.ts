/**
 * Concatenation and slicing along any axis of contiguous tensors. Both reduce to copying `count` equal blocks
 * between two strided layouts: large blocks go through copyBufferToBuffer (no binding-size limit, so tensors
 * beyond one storage binding work), many small blocks through one gather kernel.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { alignedRange, bindableElements, Program } from './program.ts';

const WG = 256;
/** Blocks at least this long (elements) are copied with copyBufferToBuffer; shorter ones by the kernel. */
const COPY_MIN_BLOCK = 4096;

/** `count` blocks of `block` elements: block k goes from src[srcOffset + k·srcStride] to dst[dstOffset + k·dstStride]. */
export interface BlockCopy {
  src: Tensor;
  srcOffset: number;
  srcStride: number;
  dst: Tensor;
  dstOffset: number;
  dstStride: number;
  block: number;
  count: number;
}

const copyBlocksProgram = new Program({
  name: 'copy_blocks',
  inputs: { S: 'f32' },
  outputs: { D: 'f32' },
  uniforms: { n: 'u32', block: 'u32', srcBase: 'u32', srcStride: 'u32', dstBase: 'u32', dstStride: 'u32' },
  workgroupSize: WG,
  flat: true,
  body: /* wgsl */ `if (i >= p.n) { return; }
  let k = i / p.block;
  let r = i - k * p.block;
  D[p.dstBase + k * p.dstStride + r] = S[p.srcBase + k * p.srcStride + r];`,
});

/** Records the block copies (in command order with the other kernels). */
export function copyBlocksKernel(c: BlockCopy): void {
  let { block, count } = c;
  if (block === 0 || count === 0) return;
  // Back-to-back blocks on both sides are one block.
  if (count > 1 && c.srcStride === block && c.dstStride === block) {
    block *= count;
    count = 1;
  }
  const rt = engine().rt;
  if (block >= COPY_MIN_BLOCK || count === 1) {
    for (let k = 0; k < count; k++)
      rt.copy(c.src.buffer, 4 * (c.srcOffset + k * c.srcStride), c.dst.buffer, 4 * (c.dstOffset + k * c.dstStride), 4 * block);
    return;
  }
  const span = (stride: number, k: number) => (k - 1) * stride + block;
  // Rows per dispatch such that the source and destination spans each fit one binding.
  const rowsPerDispatch = Math.floor((bindableElements() - block) / Math.max(c.srcStride, c.dstStride)) + 1;
  for (let k0 = 0; k0 < count; k0 += rowsPerDispatch) {
    const rows = Math.min(rowsPerDispatch, count - k0);
    const s = alignedRange(c.src, c.srcOffset + k0 * c.srcStride, span(c.srcStride, rows));
    const d = alignedRange(c.dst, c.dstOffset + k0 * c.dstStride, span(c.dstStride, rows));
    const n = rows * block;
    copyBlocksProgram.dispatchFlat(n, { S: s.range, D: d.range }, { n, block, srcBase: s.base, srcStride: c.srcStride, dstBase: d.base, dstStride: c.dstStride });
  }
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Products of the dimensions before and after `axis`. */
function outerInner(shape: readonly number[], axis: number): [number, number] {
  let outer = 1;
  let inner = 1;
  shape.forEach((d, i) => {
    if (i < axis) outer *= d;
    else if (i > axis) inner *= d;
  });
  return [outer, inner];
}

/** The shape of the concatenation, after checking that the inputs agree off the axis. */
export function concatShape(shapes: readonly (readonly number[])[], axis: number): { shape: number[]; axis: number } {
  if (shapes.length === 0) throw new Error('concat: no tensors');
  const first = shapes[0];
  const a = normAxis(axis, first.length, 'concat');
  const shape = [...first];
  shape[a] = 0;
  for (const s of shapes) {
    if (s.length !== first.length || s.some((d, i) => i !== a && d !== first[i]))
      throw new Error(`concat on axis ${a}: shapes [${first.join(', ')}] and [${s.join(', ')}] differ off the axis`);
    shape[a] += s[a];
  }
  return { shape, axis: a };
}

/** Concatenates contiguous tensors along `axis`. */
export function concatKernel(tensors: readonly Tensor[], axis: number): Tensor {
  const { shape, axis: a } = concatShape(tensors.map((t) => t.shape), axis);
  const out = Tensor.empty(shape);
  const [outer, inner] = outerInner(shape, a);
  const rowLength = shape[a] * inner;
  let offset = 0;
  for (const t of tensors) {
    const block = t.shape[a] * inner;
    copyBlocksKernel({ src: t, srcOffset: 0, srcStride: block, dst: out, dstOffset: offset, dstStride: rowLength, block, count: outer });
    offset += block;
  }
  return out;
}

function checkRange(shape: readonly number[], axis: number, start: number, end: number): number {
  const a = normAxis(axis, shape.length, 'slice');
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > shape[a] || start > end)
    throw new Error(`slice: range [${start}, ${end}) out of bounds for axis ${a} of [${shape.join(', ')}]`);
  return a;
}

/** x[..., start:end, ...] along `axis`, as a new contiguous tensor. */
export function sliceKernel(x: Tensor, axis: number, start: number, end: number): Tensor {
  const a = checkRange(x.shape, axis, start, end);
  const shape = [...x.shape];
  shape[a] = end - start;
  const out = Tensor.empty(shape);
  const [outer, inner] = outerInner(x.shape, a);
  const block = (end - start) * inner;
  copyBlocksKernel({ src: x, srcOffset: start * inner, srcStride: x.shape[a] * inner, dst: out, dstOffset: 0, dstStride: block, block, count: outer });
  return out;
}

/** The adjoint of sliceKernel: zeros of `shape` with g placed at [start, start + g.shape[axis]) along `axis`. */
export function sliceGradKernel(g: Tensor, shape: readonly number[], axis: number, start: number): Tensor {
  const a = checkRange(shape, axis, start, start + g.shape[normAxis(axis, shape.length, 'slice')]);
  const out = Tensor.zeros(shape);
  const [outer, inner] = outerInner(shape, a);
  const block = g.shape[a] * inner;
  copyBlocksKernel({ src: g, srcOffset: 0, srcStride: block, dst: out, dstOffset: start * inner, dstStride: shape[a] * inner, block, count: outer });
  return out;
}
