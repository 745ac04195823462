/**
 * Average pooling of (N, C, H, W) maps over k×k windows with stride k and no padding, as PyTorch's
 * F.avg_pool2d(x, k): rows and columns past the last whole window are dropped. The backward is a gather: each
 * input pixel reads the gradient of the one window holding it (zero for dropped pixels), so no atomics are needed.
 * Maps larger than one storage binding are processed in groups of whole planes.
 */
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements, forEachItemRun, Program } from './program.ts';

const WG = 256;

const UNIFORMS = { planes: 'u32', h: 'u32', w: 'u32', oh: 'u32', ow: 'u32', k: 'u32', sBase: 'u32', dBase: 'u32', inv: 'f32' } as const;

// S = x (h × w planes), D = the pooled map (oh × ow planes); one invocation per output pixel.
const forwardProgram = new Program({
  name: 'avg_pool',
  inputs: { S: 'f32' },
  outputs: { D: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: WG,
  flat: true,
  body: /* wgsl */ `let perPlane = p.oh * p.ow;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let oy = r / p.ow;
  let ox = r - oy * p.ow;
  let corner = p.sBase + plane * p.h * p.w + oy * p.k * p.w + ox * p.k;
  var acc = 0.0;
  for (var dy = 0u; dy < p.k; dy++) {
    let row = corner + dy * p.w;
    for (var dx = 0u; dx < p.k; dx++) { acc += S[row + dx]; }
  }
  D[p.dBase + i] = acc * p.inv;`,
});

// S = the output gradient (oh × ow planes), D = the input gradient (h × w planes); one invocation per input pixel.
const gradProgram = new Program({
  name: 'avg_pool_grad',
  inputs: { S: 'f32' },
  outputs: { D: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: WG,
  flat: true,
  body: /* wgsl */ `let perPlane = p.h * p.w;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let oy = (r / p.w) / p.k;
  let ox = (r % p.w) / p.k;
  var v = 0.0;
  if (oy < p.oh && ox < p.ow) { v = S[p.sBase + plane * p.oh * p.ow + oy * p.ow + ox] * p.inv; }
  D[p.dBase + i] = v;`,
});

/** The pooled size of an (N, C, H, W) map, after checking the shape and the window. */
export function avgPoolShape(shape: readonly number[], k: number): number[] {
  if (shape.length !== 4) throw new Error(`avgPool2d: expected (N, C, H, W), got [${shape.join(', ')}]`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`avgPool2d: the window must be a positive integer, got ${k}`);
  const [n, c, h, w] = shape;
  if (h < k || w < k) throw new Error(`avgPool2d: a ${h}×${w} map is smaller than the ${k}×${k} window`);
  return [n, c, Math.floor(h / k), Math.floor(w / k)];
}

/** Dispatches `program` over groups of whole planes whose source and destination each fit one binding. */
function planeGroups(program: Program, src: Tensor, dst: Tensor, inShape: readonly number[], k: number, threadsPerPlane: number, srcPlane: number, dstPlane: number): void {
  const [n, c, h, w] = inShape;
  const [oh, ow] = [Math.floor(h / k), Math.floor(w / k)];
  const label = program.spec.name;
  // The input plane is the larger one.
  if (h * w > bindableElements()) throw new LimitError(`${label}: one ${h}×${w} plane exceeds one storage binding`);
  forEachItemRun(n * c, h * w, label, (p0, count) => {
    const s = alignedRange(src, p0 * srcPlane, count * srcPlane);
    const d = alignedRange(dst, p0 * dstPlane, count * dstPlane);
    const uniforms = { planes: count, h, w, oh, ow, k, sBase: s.base, dBase: d.base, inv: 1 / (k * k) };
    program.dispatchFlat(count * threadsPerPlane, { S: s.range, D: d.range }, uniforms);
  });
}

/** x (N, C, H, W) → (N, C, ⌊H/k⌋, ⌊W/k⌋): the mean of each k×k window, stride k. */
export function avgPoolKernel(x: Tensor, k: number): Tensor {
  const shape = avgPoolShape(x.shape, k);
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const [h, w] = [x.shape[2], x.shape[3]];
  const [oh, ow] = [shape[2], shape[3]];
  planeGroups(forwardProgram, x, out, x.shape, k, oh * ow, h * w, oh * ow);
  return out;
}

/** The gradient of avgPoolKernel for an input of `inShape`, given the output gradient g. */
export function avgPoolGradKernel(g: Tensor, inShape: readonly number[], k: number): Tensor {
  const [, , oh, ow] = avgPoolShape(inShape, k);
  const gx = Tensor.empty(inShape);
  if (gx.size === 0) return gx;
  const [h, w] = [inShape[2], inShape[3]];
  planeGroups(gradProgram, g, gx, inShape, k, h * w, oh * ow, h * w);
  return gx;
}
