/**
 * Softmax along one axis of a contiguous tensor viewed as (outer, L, inner): one invocation per (outer, inner)
 * line, three passes over the line (max, sum of exponentials, normalise). The backward uses the same layout:
 * dx = y·(g − Σ g·y).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { grid1d } from './wgsl.ts';

const WG = 64;

const header = /* wgsl */ `
struct P { lines: u32, len: u32, inner: u32, _a: u32 }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let line = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (line >= p.lines) { return; }
  let o = line / p.inner;
  let base = o * p.len * p.inner + (line - o * p.inner);
  let stride = p.inner;`;

const forwardCode = /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
${header}
  var m = X[base];
  for (var k = 1u; k < p.len; k++) { m = max(m, X[base + k * stride]); }
  var s = 0.0;
  for (var k = 0u; k < p.len; k++) { s += exp(X[base + k * stride] - m); }
  let inv = 1.0 / s;
  for (var k = 0u; k < p.len; k++) { Y[base + k * stride] = exp(X[base + k * stride] - m) * inv; }
}`;

const backwardCode = /* wgsl */ `
@group(0) @binding(0) var<storage, read> Y: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
${header}
  var dot = 0.0;
  for (var k = 0u; k < p.len; k++) { dot += Y[base + k * stride] * G[base + k * stride]; }
  for (var k = 0u; k < p.len; k++) {
    let j = base + k * stride;
    D[j] = Y[j] * (G[j] - dot);
  }
}`;

function layout(x: Tensor, axis: number, label: string): { params: Uint8Array; lines: number } {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a >= x.rank) throw new Error(`${label}: axis ${axis} out of range for [${x.shape.join(', ')}]`);
  if (x.bytes > engine().rt.maxBinding) throw new LimitError(`${label}: a tensor of ${x.bytes} bytes exceeds one storage binding`);
  const len = x.shape[a];
  const inner = x.shape.slice(a + 1).reduce((n, d) => n * d, 1);
  const lines = len === 0 ? 0 : x.size / len;
  return { params: new Params().u32(lines, len, inner, 0).bytes, lines };
}

/** softmax(x) along `axis`. */
export function softmaxKernel(x: Tensor, axis: number): Tensor {
  const y = Tensor.empty(x.shape);
  const { params, lines } = layout(x, axis, 'softmax');
  if (lines) engine().rt.dispatch({ label: 'softmax', code: forwardCode, buffers: [x.buffer, y.buffer], params, workgroups: grid1d(Math.ceil(lines / WG)) });
  return y;
}

/** The input gradient of softmax given its output y and the output gradient g. */
export function softmaxBackwardKernel(y: Tensor, g: Tensor, axis: number): Tensor {
  if (!sameShape(y.shape, g.shape)) throw new Error('softmax backward: gradient shape differs from the output');
  const d = Tensor.empty(y.shape);
  const { params, lines } = layout(y, axis, 'softmax_grad');
  if (lines) engine().rt.dispatch({ label: 'softmax_grad', code: backwardCode, buffers: [y.buffer, g.buffer, d.buffer], params, workgroups: grid1d(Math.ceil(lines / WG)) });
  return d;
}
