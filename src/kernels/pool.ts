/**
 * Average pooling of (N, C, H, W) maps over k×k windows with stride k and no padding, as PyTorch's
 * F.avg_pool2d(x, k): rows and columns past the last whole window are dropped. The backward is a gather: each
 * input pixel reads the gradient of the one window holding it (zero for dropped pixels), so no atomics are needed.
 * Maps larger than one storage binding are processed in groups of whole planes.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { alignedRange, bindableElements } from './binding-range.ts';
import { grid1d } from './wgsl.ts';

const WG = 256;

const header = /* wgsl */ `
struct P { planes: u32, h: u32, w: u32, oh: u32, ow: u32, k: u32, sBase: u32, dBase: u32, inv: f32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<storage, read> S: array<f32>;
@group(0) @binding(1) var<storage, read_write> D: array<f32>;
@group(0) @binding(2) var<uniform> p: P;`;

// S = x (h × w planes), D = the pooled map (oh × ow planes); one invocation per output pixel.
const forwardCode = /* wgsl */ `${header}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  let perPlane = p.oh * p.ow;
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
  D[p.dBase + i] = acc * p.inv;
}`;

// S = the output gradient (oh × ow planes), D = the input gradient (h × w planes); one invocation per input pixel.
const backwardCode = /* wgsl */ `${header}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  let perPlane = p.h * p.w;
  if (i >= p.planes * perPlane) { return; }
  let plane = i / perPlane;
  let r = i - plane * perPlane;
  let oy = (r / p.w) / p.k;
  let ox = (r % p.w) / p.k;
  var v = 0.0;
  if (oy < p.oh && ox < p.ow) { v = S[p.sBase + plane * p.oh * p.ow + oy * p.ow + ox] * p.inv; }
  D[p.dBase + i] = v;
}`;

/** The pooled size of an (N, C, H, W) map, after checking the shape and the window. */
export function avgPoolShape(shape: readonly number[], k: number): number[] {
  if (shape.length !== 4) throw new Error(`avgPool2d: expected (N, C, H, W), got [${shape.join(', ')}]`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`avgPool2d: the window must be a positive integer, got ${k}`);
  const [n, c, h, w] = shape;
  if (h < k || w < k) throw new Error(`avgPool2d: a ${h}×${w} map is smaller than the ${k}×${k} window`);
  return [n, c, Math.floor(h / k), Math.floor(w / k)];
}

/** Dispatches `code` over groups of whole planes whose source and destination each fit one binding. */
function planeGroups(label: string, code: string, src: Tensor, dst: Tensor, inShape: readonly number[], k: number, threadsPerPlane: number, srcPlane: number, dstPlane: number): void {
  const [n, c, h, w] = inShape;
  const [oh, ow] = [Math.floor(h / k), Math.floor(w / k)];
  const planes = n * c;
  const perGroup = Math.floor(bindableElements() / (h * w)); // the input plane is the larger one
  if (perGroup < 1) throw new LimitError(`${label}: one ${h}×${w} plane exceeds one storage binding`);
  for (let p0 = 0; p0 < planes; p0 += perGroup) {
    const count = Math.min(perGroup, planes - p0);
    const s = alignedRange(src, p0 * srcPlane, count * srcPlane);
    const d = alignedRange(dst, p0 * dstPlane, count * dstPlane);
    engine().rt.dispatch({
      label,
      code,
      buffers: [s.range, d.range],
      params: new Params().u32(count, h, w, oh, ow, k, s.base, d.base).f32(1 / (k * k)).u32(0, 0, 0).bytes,
      workgroups: grid1d(Math.ceil((count * threadsPerPlane) / WG)),
    });
  }
}

/** x (N, C, H, W) → (N, C, ⌊H/k⌋, ⌊W/k⌋): the mean of each k×k window, stride k. */
export function avgPoolKernel(x: Tensor, k: number): Tensor {
  const shape = avgPoolShape(x.shape, k);
  const out = Tensor.empty(shape);
  if (out.size === 0) return out;
  const [h, w] = [x.shape[2], x.shape[3]];
  const [oh, ow] = [shape[2], shape[3]];
  planeGroups('avg_pool', forwardCode, x, out, x.shape, k, oh * ow, h * w, oh * ow);
  return out;
}

/** The gradient of avgPoolKernel for an input of `inShape`, given the output gradient g. */
export function avgPoolBackwardKernel(g: Tensor, inShape: readonly number[], k: number): Tensor {
  const [, , oh, ow] = avgPoolShape(inShape, k);
  const gx = Tensor.empty(inShape);
  if (gx.size === 0) return gx;
  const [h, w] = [inShape[2], inShape[3]];
  planeGroups('avg_pool_grad', backwardCode, g, gx, inShape, k, h * w, oh * ow, h * w);
  return gx;
}
