/** Concatenation, slicing and bilinear resizing (align_corners=True), including tensors beyond one storage binding. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import * as ref from './helpers/reference.ts';
import { refResize, refResizeGradPlane } from './helpers/resize-reference.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { tidy } from '../src/tensor/engine.ts';
import { concat, slice, resizeBilinear, scaledSize, sum, mul } from '../src/ops/index.ts';

const t = suite('concat-resize');
const rng = new Rng(11);

/** float64 concatenation of row-major arrays along `axis`. */
function refConcat(parts: Float32Array[], shapes: number[][], axis: number): Float64Array {
  const outer = shapes[0].slice(0, axis).reduce((n, d) => n * d, 1);
  const blocks = shapes.map((s) => s.slice(axis).reduce((n, d) => n * d, 1));
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (let k = 0; k < outer; k++)
    parts.forEach((p, i) => {
      for (let r = 0; r < blocks[i]; r++) out[o++] = p[k * blocks[i] + r];
    });
  return out;
}

t('concat matches float64 on every axis, with small and large blocks', async () => {
  await gpu();
  const cases: Array<[number[][], number]> = [
    [[[2, 3, 5, 7], [2, 1, 5, 7], [2, 4, 5, 7]], 1],
    [[[1, 1, 1], [1, 2, 1]], 1],
    [[[3, 5], [2, 5]], 0],
    [[[4, 3, 2], [4, 3, 5], [4, 3, 1]], 2],
    [[[4, 3, 2], [4, 3, 5]], -1],
    [[[2, 64, 31, 37], [2, 16, 31, 37]], 1], // blocks over the copy threshold: copyBufferToBuffer
    [[[517, 3], [517, 2]], 1], // many short blocks: the gather kernel
    [[[3, 0, 4], [3, 2, 4]], 1],
  ];
  for (const [shapes, axis] of cases) {
    const parts = shapes.map((s) => rng.uniform(ref.size(s)));
    const out = tidy(() => concat(parts.map((p, i) => Tensor.fromArray(p, shapes[i])), axis));
    const a = axis < 0 ? axis + shapes[0].length : axis;
    const wantShape = [...shapes[0]];
    wantShape[a] = shapes.reduce((n, s) => n + s[a], 0);
    assert.equal([...out.shape], wantShape, `concat shape ${JSON.stringify(shapes)}`);
    assertClose(await out.data(), refConcat(parts, shapes, a), { what: `concat ${JSON.stringify(shapes)} axis ${axis}`, rtol: 0, atol: 0 });
    out.dispose();
  }
  assert.throws(() => concat([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], 1), /differ off the axis/);
});

t('slice matches float64 and its gradient places g back among zeros', async () => {
  await gpu();
  const shape = [3, 7, 5];
  const x = rng.uniform(ref.size(shape));
  const st = ref.strides(shape);
  for (const [axis, start, end] of [[0, 1, 3], [1, 2, 7], [2, 0, 1], [-1, 3, 5]]) {
    const a = axis < 0 ? axis + 3 : axis;
    const want: number[] = [];
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / st[a]) % shape[a];
      if (c >= start && c < end) want.push(x[i]);
    }
    const out = tidy(() => slice(Tensor.fromArray(x, shape), axis, start, end));
    assertClose(await out.data(), want, { what: `slice ${axis} ${start}:${end}`, rtol: 0, atol: 0 });
    out.dispose();
  }
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['concat channels', ([a, b, c]) => concat([a, b, c], 1), [[2, 3, 2, 3], [2, 1, 2, 3], [2, 2, 2, 3]]],
    ['concat last axis, reused input', ([a, b]) => concat([a, b, a], -1), [[3, 2], [3, 5]]],
    ['slice middle', ([x]) => slice(x, 1, 1, 4), [[2, 5, 3]]],
    ['slice of concat', ([a, b]) => mul(slice(concat([a, b], 0), 0, 1, 4), slice(concat([b, a], 0), 0, 0, 3)), [[2, 3], [3, 3]]],
  ];
  for (const [name, f, shapes] of checks) {
    const r = await gradcheck(f, shapes.map((s) => rng.uniform(ref.size(s))), shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t('concat beyond one storage binding (the 160-channel x_f layout) and its backward', async () => {
  const e = await gpu();
  // (2, 64+64+16+24, 331, 317): 140.6 MB, over the 128 MiB binding limit.
  const channels = [64, 64, 16, 24];
  const [n, h, w] = [2, 331, 317];
  const plane = h * w;
  const total = channels.reduce((s, c) => s + c, 0);
  assert.ok(n * total * plane * 4 > e.rt.maxBinding, 'the output exceeds one binding');
  // Input i holds value i·1000 + (sample·C_i + channel) + pixel/plane, so every position is checkable.
  const inputs = channels.map((c, i) => {
    const d = new Float32Array(n * c * plane);
    for (let k = 0; k < d.length; k++) d[k] = i * 1000 + Math.floor(k / plane) + (k % plane) / plane;
    const x = Tensor.fromArray(d, [n, c, h, w]);
    x.requiresGrad = true;
    return x;
  });
  const out = concat(inputs, 1);
  assert.equal([...out.shape], [n, total, h, w]);
  const got = await out.data();
  for (let s = 0; s < n; s++) {
    let c0 = 0;
    channels.forEach((c, i) => {
      for (const ch of [0, c - 1]) for (const px of [0, 7919, plane - 1]) {
        const idx = ((s * total + c0 + ch) * plane) + px;
        assert.is(got[idx], Math.fround(i * 1000 + (s * c + ch) + px / plane), `sample ${s} input ${i} channel ${ch} pixel ${px}`);
      }
      c0 += c;
    });
  }
  // Backward: each input's gradient is its own slice of the output gradient.
  const ramp = new Float32Array(out.size);
  for (let k = 0; k < ramp.length; k++) ramp[k] = (k % 9973) / 9973;
  const r = Tensor.fromArray(ramp, out.shape);
  backward(out, r); // seeding with the ramp: a sum over the whole output would not fit one binding
  let c0 = 0;
  for (const [i, x] of inputs.entries()) {
    const g = await x.grad!.data();
    const c = channels[i];
    for (const [s, ch, px] of [[0, 0, 0], [1, c - 1, plane - 1], [1, 3, 12345]]) {
      const want = ramp[(s * total + c0 + ch) * plane + px];
      assert.is(g[(s * c + ch) * plane + px], want, `gradient of input ${i}`);
    }
    c0 += c;
  }
  for (const x of [...inputs, out, r]) x.dispose();
});

t('slicing short rows out of a tensor beyond one storage binding (the chunked gather kernel)', async () => {
  const e = await gpu();
  const [rows, cols] = [11200, 3000]; // 134.4 MB
  assert.ok(rows * cols * 4 > e.rt.maxBinding);
  const data = new Float32Array(rows * cols);
  for (let k = 0; k < data.length; k++) data[k] = k % 1000003;
  const x = Tensor.fromArray(data, [rows, cols]);
  const out = slice(x, 1, 1999, 2999);
  const got = await out.data();
  // Every element: the dispatches split the rows where the source span reaches one binding.
  let wrong = -1;
  for (let k = 0; k < got.length && wrong < 0; k++) if (got[k] !== data[Math.floor(k / 1000) * cols + 1999 + (k % 1000)]) wrong = k;
  assert.is(wrong, -1, `first wrong element ${wrong}`);
  x.dispose();
  out.dispose();
});

t('resizeBilinear matches the align_corners=True formula, down and up, any factor', async () => {
  await gpu();
  const cases: Array<[number[], number, number]> = [
    [[2, 3, 13, 17], 5, 7],
    [[1, 2, 7, 5], 19, 11],
    [[1, 1, 1, 1], 3, 4],
    [[2, 1, 6, 9], 1, 1],
    [[1, 1, 5, 1], 5, 3],
    [[1, 2, 48, 64], ...scaledSize(48, 64, 0.25)],
    [[1, 1, 40, 56], ...scaledSize(40, 56, 0.125)],
    [[1, 2, 12, 16], 48, 64],
  ];
  for (const [shape, oh, ow] of cases) {
    const x = rng.uniform(ref.size(shape));
    const out = tidy(() => resizeBilinear(Tensor.fromArray(x, shape), oh, ow));
    assert.equal([...out.shape], [shape[0], shape[1], oh, ow]);
    assertClose(await out.data(), refResize(x, shape, oh, ow), { what: `resize [${shape}] → ${oh}×${ow}` });
    out.dispose();
  }
  assert.equal(scaledSize(480, 640, 0.25), [120, 160]);
  assert.equal(scaledSize(480, 640, 0.125), [60, 80]);
  // Corners map onto corners exactly.
  const x = Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2]);
  const up = resizeBilinear(x, 3, 3);
  assertClose(await up.data(), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], { what: 'corners' });
  x.dispose();
  up.dispose();
});

t('resizeBilinear backward: the adjoint of the forward, and finite differences', async () => {
  // Axes shrunk more than 2× take the touched-pixels path; the cases mix it with full gathers on either axis.
  await gpu();
  for (const [shape, oh, ow] of [[[2, 3, 13, 17], 5, 7], [[1, 2, 6, 5], 17, 12], [[1, 1, 1, 4], 3, 9], [[1, 1, 4, 3], 1, 1], [[1, 1, 40, 56], 5, 7], [[1, 2, 9, 4], 3, 6], [[2, 1, 3, 29], 5, 2]] as Array<[number[], number, number]>) {
    const x = Tensor.fromArray(rng.uniform(ref.size(shape)), shape);
    x.requiresGrad = true;
    const gData = rng.uniform(shape[0] * shape[1] * oh * ow);
    const g = Tensor.fromArray(gData, [shape[0], shape[1], oh, ow]);
    const loss = tidy(() => sum(mul(resizeBilinear(x, oh, ow), g)));
    backward(loss);
    const [, , h, w] = shape;
    const want = new Float64Array(x.size);
    for (let p = 0; p < shape[0] * shape[1]; p++) want.set(refResizeGradPlane(gData, p * oh * ow, h, w, oh, ow), p * h * w);
    assertClose(await x.grad!.data(), want, { what: `resize grad [${shape}] → ${oh}×${ow}` });
    for (const v of [x, g, loss]) v.dispose();
  }
  for (const [shape, oh, ow] of [[[1, 2, 5, 4], 3, 7], [[2, 1, 3, 3], 8, 2], [[1, 1, 11, 3], 4, 2]] as Array<[number[], number, number]>) {
    const r = await gradcheck(([x]) => resizeBilinear(x, oh, ow), [rng.uniform(ref.size(shape))], [shape]);
    assert.ok(r.ok, `resize [${shape}] → ${oh}×${ow}: ${r.message}`);
  }
});

t('resizeBilinear on a map beyond one storage binding (gate input of x_f, scale 0.125), forward and backward', async () => {
  const e = await gpu();
  const shape = [1, 112, 480, 640]; // 137.6 MB
  const [, c, h, w] = shape;
  const plane = h * w;
  assert.ok(ref.size(shape) * 4 > e.rt.maxBinding);
  const [oh, ow] = scaledSize(h, w, 0.125);
  // A smooth pattern per channel keeps values distinct without a 34 M-value random draw.
  const data = new Float32Array(ref.size(shape));
  for (let k = 0; k < data.length; k++) {
    const ch = Math.floor(k / plane);
    data[k] = Math.sin(0.001 * (k % plane) + ch) + 0.01 * ch;
  }
  const x = Tensor.fromArray(data, shape);
  x.requiresGrad = true;
  const out = resizeBilinear(x, oh, ow);
  const got = await out.data();
  for (const ch of [0, 1, 57, c - 1]) {
    const want = refResize(data.subarray(ch * plane, (ch + 1) * plane), [1, 1, h, w], oh, ow);
    assertClose(got.subarray(ch * oh * ow, (ch + 1) * oh * ow), want, { what: `big resize channel ${ch}` });
  }
  const gData = rng.uniform(out.size);
  const g = Tensor.fromArray(gData, out.shape);
  const loss = tidy(() => sum(mul(out, g)));
  backward(loss);
  const grad = await x.grad!.data();
  for (const ch of [0, 56, c - 1]) {
    const want = refResizeGradPlane(gData, ch * oh * ow, h, w, oh, ow);
    assertClose(grad.subarray(ch * plane, (ch + 1) * plane), want, { what: `big resize gradient channel ${ch}` });
  }
  for (const v of [x, out, g, loss]) v.dispose();
});

t.run();
