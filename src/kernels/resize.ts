/**
 * Bilinear resizing of (N, C, H, W) maps with PyTorch's align_corners=True mapping: output index o samples the
 * input at o·(in−1)/(out−1) (0 when out = 1). The backward is a gather, one axis after the other: every input
 * index sums the output gradients whose taps reach it (axisGradTable), so no atomics are needed. Maps larger than
 * one storage binding are processed in groups of whole planes.
 */
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements, forEachItemRun, Program, type AlignedRange } from './program.ts';

const WG = 256;

/** The align_corners=True source step, in float32 as PyTorch computes it. */
export function alignCornersScale(inSize: number, outSize: number): number {
  return outSize > 1 ? Math.fround((inSize - 1) / (outSize - 1)) : 0;
}

const TAPS = /* wgsl */ `
// The two input taps of output index o along one axis and the weight of the second: (i0, i0 + step, lambda).
struct Taps { i0: u32, i1: u32, l: f32 }
fn taps(o: u32, scale: f32, inSize: u32) -> Taps {
  let src = f32(o) * scale;
  let i0 = min(u32(src), inSize - 1u);
  let i1 = select(i0, i0 + 1u, i0 < inSize - 1u);
  return Taps(i0, i1, clamp(src - f32(i0), 0.0, 1.0));
}`;

const forwardProgram = new Program({
  name: 'resize_bilinear',
  inputs: { X: 'f32' },
  outputs: { O: 'f32' },
  uniforms: { planes: 'u32', inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32', xBase: 'u32', oBase: 'u32', sy: 'f32', sx: 'f32' },
  workgroupSize: WG,
  flat: true,
  header: TAPS,
  body: /* wgsl */ `let perPlane = p.outH * p.outW;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let oy = r / p.outW;
  let ox = r - oy * p.outW;
  let ty = taps(oy, p.sy, p.inH);
  let tx = taps(ox, p.sx, p.inW);
  let base = p.xBase + plane * p.inH * p.inW;
  let row0 = base + ty.i0 * p.inW;
  let row1 = base + ty.i1 * p.inW;
  let top = (1.0 - tx.l) * X[row0 + tx.i0] + tx.l * X[row0 + tx.i1];
  let bottom = (1.0 - tx.l) * X[row1 + tx.i0] + tx.l * X[row1 + tx.i1];
  O[p.oBase + i] = (1.0 - ty.l) * top + ty.l * bottom;`,
});

/**
 * One axis of the backward, a gather through a table: input index i along the axis receives
 * Σ_k weight[i][k]·g[index[i][k]] from the output indices whose taps reach it (K entries per index, padded with
 * zero weights). `rows` sums along the width (g: outH×outW planes → outH×inW), `cols` along the height
 * (outH×inW → inH×inW). Two separable passes of K terms replace a 2-D gather of K² candidates per pixel.
 */
function axisGradProgram(axis: 'rows' | 'cols'): Program {
  const [i, stride] = axis === 'rows' ? ['x', '1u'] : ['y', 'p.inW'];
  return new Program({
    name: `resize_bilinear_grad_${axis}`,
    inputs: { X: 'f32', Idx: 'u32', Wt: 'f32' },
    outputs: { O: 'f32' },
    uniforms: { planes: 'u32', h: 'u32', inW: 'u32', srcW: 'u32', srcH: 'u32', xBase: 'u32', oBase: 'u32', K: 'u32' },
    workgroupSize: WG,
    flat: true,
    // Output of the pass: planes of h rows by inW; its source: planes of srcH rows by srcW.
    body: /* wgsl */ `let perPlane = p.h * p.inW;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let y = r / p.inW;
  let x = r - y * p.inW;
  ${axis === 'rows' ? 'let src = p.xBase + plane * p.srcH * p.srcW + y * p.srcW;' : 'let src = p.xBase + plane * p.srcH * p.srcW + x;'}
  let t = ${i} * p.K;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) { acc += Wt[t + k] * X[src + Idx[t + k] * ${stride}]; }
  O[p.oBase + i] = acc;`,
  });
}

const gradPrograms = { rows: axisGradProgram('rows'), cols: axisGradProgram('cols') };

/**
 * The backward's table for one axis: for each input index, the output indices whose taps reach it and the taps'
 * weights, computed in float32 exactly as the forward's taps() does. Returns the indices, weights and entries K.
 */
export function axisGradTable(inSize: number, outSize: number): { index: Uint32Array; weight: Float32Array; K: number } {
  const scale = alignCornersScale(inSize, outSize);
  const lists: Array<Array<[number, number]>> = Array.from({ length: inSize }, () => []);
  const add = (i: number, o: number, w: number) => {
    const list = lists[i];
    const last = list[list.length - 1];
    if (last && last[0] === o) last[1] = Math.fround(last[1] + w);
    else list.push([o, w]);
  };
  for (let o = 0; o < outSize; o++) {
    const src = Math.fround(o * scale);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    const l = Math.min(Math.max(Math.fround(src - i0), 0), 1);
    add(i0, o, Math.fround(1 - l));
    add(i1, o, l);
  }
  const K = Math.max(1, ...lists.map((l) => l.length));
  const index = new Uint32Array(inSize * K);
  const weight = new Float32Array(inSize * K);
  lists.forEach((list, i) => list.forEach(([o, w], k) => {
    index[i * K + k] = o;
    weight[i * K + k] = w;
  }));
  return { index, weight, K };
}

/**
 * Calls fn for groups of whole planes such that each group's source and destination fit one binding: the bound
 * ranges and the number of planes in the group.
 */
function planeGroups(src: Tensor, dst: Tensor, planes: number, srcPlane: number, dstPlane: number, what: string, fn: (s: AlignedRange, o: AlignedRange, k: number) => void): void {
  const plane = Math.max(srcPlane, dstPlane);
  if (plane > bindableElements()) throw new LimitError(`${what}: one plane of ${plane} elements exceeds one storage binding`);
  forEachItemRun(planes, plane, what, (p0, k) => fn(alignedRange(src, p0 * srcPlane, k * srcPlane), alignedRange(dst, p0 * dstPlane, k * dstPlane), k));
}

function checkInput(shape: readonly number[], outH: number, outW: number): void {
  if (shape.length !== 4) throw new Error(`resizeBilinear: expected (N, C, H, W), got [${shape.join(', ')}]`);
  for (const d of [outH, outW]) if (!Number.isInteger(d) || d < 1) throw new Error(`resizeBilinear: output size ${outH}×${outW} is invalid`);
}

/** Resizes x (N, C, H, W) to (N, C, outH, outW), bilinear, align_corners=True. */
export function resizeBilinearKernel(x: Tensor, outH: number, outW: number): Tensor {
  checkInput(x.shape, outH, outW);
  const [n, c, h, w] = x.shape;
  const out = Tensor.empty([n, c, outH, outW]);
  if (out.size === 0) return out;
  if (x.size === 0) throw new Error('resizeBilinear: empty input plane');
  const [sy, sx] = [alignCornersScale(h, outH), alignCornersScale(w, outW)];
  planeGroups(x, out, n * c, h * w, outH * outW, 'resizeBilinear', (s, o, k) =>
    forwardProgram.dispatchFlat(k * outH * outW, { X: s.range, O: o.range }, { planes: k, inH: h, inW: w, outH, outW, xBase: s.base, oBase: o.base, sy, sx }));
  return out;
}

/** The gradient of resizeBilinearKernel for an input of `inShape` given the output gradient g. */
export function resizeBilinearGradKernel(g: Tensor, inShape: readonly number[]): Tensor {
  const [n, c, h, w] = inShape;
  const [, , outH, outW] = g.shape;
  const gx = Tensor.empty(inShape);
  if (gx.size === 0) return gx;
  const planes = n * c;
  const pass = (axis: 'rows' | 'cols', src: Tensor, dst: Tensor, table: ReturnType<typeof axisGradTable>, rows: number, srcH: number, srcW: number) => {
    const index = Tensor.fromArray(table.index, [table.index.length], 'u32');
    const weight = Tensor.fromArray(table.weight, [table.weight.length]);
    planeGroups(src, dst, planes, srcH * srcW, rows * w, 'resizeBilinear backward', (s, o, k) => {
      const uniforms = { planes: k, h: rows, inW: w, srcW, srcH, xBase: s.base, oBase: o.base, K: table.K };
      gradPrograms[axis].dispatchFlat(k * rows * w, { X: s.range, Idx: index, Wt: weight, O: o.range }, uniforms);
    });
    index.dispose();
    weight.dispose();
  };
  // Along the width first (outH × outW → outH × w), then along the height (→ h × w).
  const t = Tensor.empty([planes, outH, w]);
  pass('rows', g, t, axisGradTable(w, outW), outH, outH, outW);
  pass('cols', t, gx, axisGradTable(h, outH), h, outH, w);
  t.dispose();
  return gx;
}
