/**
 * Bilinear resizing of (N, C, H, W) maps with PyTorch's align_corners=True mapping: output index o samples the
 * input at o·(in−1)/(out−1) (0 when out = 1). The backward is a gather: every input pixel sums the output
 * gradients whose 2×2 footprint covers it, so no atomics are needed. Maps larger than one storage binding are
 * processed in groups of whole planes.
 */
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements, forEachItemRun, Program } from './program.ts';

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

/** The uniforms of both directions; the candidate fields only matter to the backward. */
const UNIFORMS = {
  planes: 'u32', inH: 'u32', inW: 'u32', outH: 'u32', outW: 'u32', xBase: 'u32', oBase: 'u32', sy: 'f32', sx: 'f32',
  candH: 'u32', candW: 'u32', touchedH: 'u32', touchedW: 'u32',
} as const;

const forwardProgram = new Program({
  name: 'resize_bilinear',
  inputs: { X: 'f32' },
  outputs: { O: 'f32' },
  uniforms: UNIFORMS,
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

// Here X is the output gradient (outH × outW planes) and O the input gradient (inH × inW planes).
const gradProgram = new Program({
  name: 'resize_bilinear_grad',
  inputs: { X: 'f32' },
  outputs: { O: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: WG,
  flat: true,
  header: /* wgsl */ `${TAPS}
// Weight of input index i in output index o along one axis.
fn weight(o: u32, i: u32, scale: f32, inSize: u32) -> f32 {
  let t = taps(o, scale, inSize);
  return select(0.0, 1.0 - t.l, t.i0 == i) + select(0.0, t.l, t.i1 == i);
}

// Output indices whose taps can reach input index i: those sampling within (i − 1, i + 1), widened by one.
fn reach(i: u32, scale: f32, outSize: u32) -> vec2u {
  if (scale == 0.0) { return vec2u(0u, outSize - 1u); }
  let lo = max(floor((f32(i) - 1.0) / scale) - 1.0, 0.0);
  let hi = min(ceil((f32(i) + 1.0) / scale) + 1.0, f32(outSize - 1u));
  return vec2u(u32(lo), u32(hi));
}

// Input index of candidate k along one axis, and whether the candidate is the first to name it. With touched,
// candidates are the taps (i0, i1) of each output in turn, each distinct index kept once; otherwise k itself.
fn candidate(k: u32, touched: bool, scale: f32, inSize: u32) -> vec2u {
  if (!touched) { return vec2u(k, 1u); }
  let o = k / 2u;
  let t = taps(o, scale, inSize);
  if (k % 2u == 1u) { return vec2u(t.i1, u32(t.i1 != t.i0)); }
  if (o == 0u) { return vec2u(t.i0, 1u); }
  let prev = taps(o - 1u, scale, inSize);
  return vec2u(t.i0, u32(prev.i0 != t.i0 && prev.i1 != t.i0));
}`,
  body: /* wgsl */ `let perPlane = p.candH * p.candW;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let cy = candidate(r / p.candW, p.touchedH != 0u, p.sy, p.inH);
  let cx = candidate(r % p.candW, p.touchedW != 0u, p.sx, p.inW);
  if (cy.y == 0u || cx.y == 0u) { return; }
  let iy = cy.x;
  let ix = cx.x;
  let ry = reach(iy, p.sy, p.outH);
  let rx = reach(ix, p.sx, p.outW);
  let base = p.xBase + plane * p.outH * p.outW;
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    let wy = weight(oy, iy, p.sy, p.inH);
    if (wy == 0.0) { continue; }
    var row = 0.0;
    for (var ox = rx.x; ox <= rx.y; ox++) {
      row += weight(ox, ix, p.sx, p.inW) * X[base + oy * p.outW + ox];
    }
    acc += wy * row;
  }
  O[p.oBase + plane * p.inH * p.inW + iy * p.inW + ix] = acc;`,
});

/** Enumerating only the touched input pixels along an axis pays when it names fewer than all of them. */
function touchedOnly(inSize: number, outSize: number): boolean {
  return 2 * outSize < inSize;
}

interface ResizeDims {
  planes: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

interface Candidates {
  candH: number;
  candW: number;
  touchedH: number;
  touchedW: number;
}

/**
 * Runs `program` over groups of whole planes so that each group's source and destination fit one binding.
 * `threadsPerPlane` invocations run per plane; `cand` fills the backward's candidate fields.
 */
function planeGroups(program: Program, src: Tensor, dst: Tensor, d: ResizeDims, srcPlane: number, dstPlane: number, threadsPerPlane: number, cand: Candidates): void {
  const plane = Math.max(srcPlane, dstPlane);
  const label = program.spec.name;
  if (plane > bindableElements()) throw new LimitError(`${label}: one ${d.inH}×${d.inW} → ${d.outH}×${d.outW} plane exceeds one storage binding`);
  const [sy, sx] = [alignCornersScale(d.inH, d.outH), alignCornersScale(d.inW, d.outW)];
  forEachItemRun(d.planes, plane, label, (p0, k) => {
    const s = alignedRange(src, p0 * srcPlane, k * srcPlane);
    const o = alignedRange(dst, p0 * dstPlane, k * dstPlane);
    const uniforms = { planes: k, inH: d.inH, inW: d.inW, outH: d.outH, outW: d.outW, xBase: s.base, oBase: o.base, sy, sx, ...cand };
    program.dispatchFlat(k * threadsPerPlane, { X: s.range, O: o.range }, uniforms);
  });
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
  const d = { planes: n * c, inH: h, inW: w, outH, outW };
  planeGroups(forwardProgram, x, out, d, h * w, outH * outW, outH * outW, { candH: 0, candW: 0, touchedH: 0, touchedW: 0 });
  return out;
}

/** The gradient of resizeBilinearKernel for an input of `inShape` given the output gradient g. */
export function resizeBilinearGradKernel(g: Tensor, inShape: readonly number[]): Tensor {
  const [n, c, h, w] = inShape;
  const [, , outH, outW] = g.shape;
  const [touchedH, touchedW] = [touchedOnly(h, outH), touchedOnly(w, outW)];
  // Pixels outside the touched rows and columns get no gradient: clear them all first.
  const gx = touchedH || touchedW ? Tensor.zeros(inShape) : Tensor.empty(inShape);
  if (gx.size === 0) return gx;
  const candH = touchedH ? 2 * outH : h;
  const candW = touchedW ? 2 * outW : w;
  const d = { planes: n * c, inH: h, inW: w, outH, outW };
  planeGroups(gradProgram, g, gx, d, outH * outW, h * w, candH * candW, { candH, candW, touchedH: +touchedH, touchedW: +touchedW });
  return gx;
}
