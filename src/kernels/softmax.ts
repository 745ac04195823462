/**
 * Softmax along one axis of a contiguous tensor viewed as (outer, L, inner): one invocation per (outer, inner)
 * line, three passes over the line (max, sum of exponentials, normalise). The backward uses the same layout:
 * dx = y·(g − Σ g·y).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { Program } from './program.ts';

const WG = 64;

const UNIFORMS = { lines: 'u32', len: 'u32', inner: 'u32' } as const;

/** The line of invocation i: its first element `base` and the `stride` between its elements. */
const LINE = /* wgsl */ `if (i >= p.lines) { return; }
  let o = i / p.inner;
  let base = o * p.len * p.inner + (i - o * p.inner);
  let stride = p.inner;`;

const forwardProgram = new Program({
  name: 'softmax',
  inputs: { X: 'f32' },
  outputs: { Y: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: WG,
  flat: true,
  body: /* wgsl */ `${LINE}
  var m = X[base];
  for (var k = 1u; k < p.len; k++) { m = max(m, X[base + k * stride]); }
  var s = 0.0;
  for (var k = 0u; k < p.len; k++) { s += exp(X[base + k * stride] - m); }
  let inv = 1.0 / s;
  for (var k = 0u; k < p.len; k++) { Y[base + k * stride] = exp(X[base + k * stride] - m) * inv; }`,
});

const gradProgram = new Program({
  name: 'softmax_grad',
  inputs: { Y: 'f32', G: 'f32' },
  outputs: { D: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: WG,
  flat: true,
  body: /* wgsl */ `${LINE}
  var dot = 0.0;
  for (var k = 0u; k < p.len; k++) { dot += Y[base + k * stride] * G[base + k * stride]; }
  for (var k = 0u; k < p.len; k++) {
    let j = base + k * stride;
    D[j] = Y[j] * (G[j] - dot);
  }`,
});

function layout(x: Tensor, axis: number, label: string): { lines: number; len: number; inner: number } {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a >= x.rank) throw new Error(`${label}: axis ${axis} out of range for [${x.shape.join(', ')}]`);
  if (x.bytes > engine().rt.maxBinding) throw new LimitError(`${label}: a tensor of ${x.bytes} bytes exceeds one storage binding`);
  const len = x.shape[a];
  const inner = x.shape.slice(a + 1).reduce((n, d) => n * d, 1);
  const lines = len === 0 ? 0 : x.size / len;
  return { lines, len, inner };
}

/** softmax(x) along `axis`. */
export function softmaxKernel(x: Tensor, axis: number): Tensor {
  const y = Tensor.empty(x.shape);
  const u = layout(x, axis, 'softmax');
  if (u.lines) forwardProgram.dispatchFlat(u.lines, { X: x, Y: y }, u);
  return y;
}

/** The input gradient of softmax given its output y and the output gradient g. */
export function softmaxGradKernel(y: Tensor, g: Tensor, axis: number): Tensor {
  if (!sameShape(y.shape, g.shape)) throw new Error('softmax backward: gradient shape differs from the output');
  const d = Tensor.empty(y.shape);
  const u = layout(y, axis, 'softmax_grad');
  if (u.lines) gradProgram.dispatchFlat(u.lines, { Y: y, G: g, D: d }, u);
  return d;
}
