/**
 * Concatenation and slicing (src/kernels/concat.ts): block copies and the gather kernel against float64
 * (src/check/reference/concat.ts) on every axis, gradients against finite differences, and tensors beyond one
 * storage binding (a small binding limit, and a real 128 MiB one).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { assertGradchecks } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refConcat, refSlice } from '../../src/check/reference/concat.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { concat, slice, mul } from '../../src/ops/index.ts';

const t = suite('concat');
const rng = new Rng(11);

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
    const parts = shapes.map((s) => rng.uniform(size(s)));
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
  const x = rng.uniform(size(shape));
  for (const [axis, start, end] of [[0, 1, 3], [1, 2, 7], [2, 0, 1], [-1, 3, 5]]) {
    const out = tidy(() => slice(Tensor.fromArray(x, shape), axis, start, end));
    assertClose(await out.data(), refSlice(x, shape, axis, start, end), { what: `slice ${axis} ${start}:${end}`, rtol: 0, atol: 0 });
    out.dispose();
  }
  await assertGradchecks([
    ['concat channels', ([a, b, c]) => concat([a, b, c], 1), [[2, 3, 2, 3], [2, 1, 2, 3], [2, 2, 2, 3]]],
    ['concat last axis, reused input', ([a, b]) => concat([a, b, a], -1), [[3, 2], [3, 5]]],
    ['slice middle', ([x]) => slice(x, 1, 1, 4), [[2, 5, 3]]],
    ['slice of concat', ([a, b]) => mul(slice(concat([a, b], 0), 0, 1, 4), slice(concat([b, a], 0), 0, 0, 3)), [[2, 3], [3, 3]]],
  ], (n) => rng.uniform(n));
});

t('the gather kernel in row groups (a small binding limit): concat, slice and the slice gradient of short rows vs float64', async () => {
  const e = await gpu();
  // 4 KiB bindings (960 floats with the alignment slack): 517 rows of 3 + 2 go in groups of 192 rows, 300 rows
  // sliced to 12 of 40 columns in groups of 24.
  e.rt.bindingLimitForTests = 4096;
  try {
    const shapes = [[517, 3], [517, 2]];
    const parts = shapes.map((s) => rng.uniform(size(s)));
    const cat = tidy(() => concat(parts.map((p, i) => Tensor.fromArray(p, shapes[i])), 1));
    assertClose(await cat.data(), refConcat(parts, shapes, 1), { what: 'concat in row groups', rtol: 0, atol: 0 });
    cat.dispose();
    const shape = [300, 40];
    const x = Tensor.fromArray(rng.uniform(size(shape)), shape);
    x.requiresGrad = true;
    const out = slice(x, 1, 5, 17);
    assertClose(await out.data(), refSlice(await x.data(), shape, 1, 5, 17), { what: 'slice in row groups', rtol: 0, atol: 0 });
    const g = rng.uniform(out.size);
    const seed = Tensor.fromArray(g, out.shape);
    backward(out, seed);
    const want = new Float64Array(size(shape));
    for (let r = 0; r < 300; r++) for (let c = 0; c < 12; c++) want[r * 40 + 5 + c] = g[r * 12 + c];
    assertClose(await x.grad!.data(), want, { what: 'slice gradient in row groups', rtol: 0, atol: 0 });
    for (const v of [x, out, seed]) v.dispose();
  } finally {
    e.rt.bindingLimitForTests = null;
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

t.run();
