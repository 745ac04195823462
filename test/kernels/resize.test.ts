/**
 * Bilinear resizing with align_corners=True (src/kernels/resize.ts): forward and backward (separable gathers
 * through per-axis tables, down and up by any factor, many entries per index when enlarging 10×) against float64 (src/check/reference/resize.ts), finite
 * differences, and maps beyond one storage binding.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refResize, refResizeGradPlane } from '../../src/check/reference/resize.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { resizeBilinear, scaledSize, sum, mul } from '../../src/ops/index.ts';

const t = suite('resize');
const rng = new Rng(11);

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
    const x = rng.uniform(size(shape));
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
  // Shrinking and enlarging on either axis; 3×4 → 40×50 gathers many entries per input index.
  await gpu();
  for (const [shape, oh, ow] of [[[2, 3, 13, 17], 5, 7], [[1, 2, 6, 5], 17, 12], [[1, 1, 1, 4], 3, 9], [[1, 1, 4, 3], 1, 1], [[1, 1, 40, 56], 5, 7], [[1, 2, 9, 4], 3, 6], [[2, 1, 3, 29], 5, 2], [[1, 1, 3, 4], 40, 50], [[2, 2, 16, 16], 15, 20]] as Array<[number[], number, number]>) {
    const x = Tensor.fromArray(rng.uniform(size(shape)), shape);
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
    const r = await gradcheck(([x]) => resizeBilinear(x, oh, ow), [rng.uniform(size(shape))], [shape]);
    assert.ok(r.ok, `resize [${shape}] → ${oh}×${ow}: ${r.message}`);
  }
});

t('resizeBilinear on a map beyond one storage binding (gate input of x_f, scale 0.125), forward and backward', async () => {
  const e = await gpu();
  const shape = [1, 112, 480, 640]; // 137.6 MB
  const [, c, h, w] = shape;
  const plane = h * w;
  assert.ok(size(shape) * 4 > e.rt.maxBinding);
  const [oh, ow] = scaledSize(h, w, 0.125);
  // A smooth pattern per channel keeps values distinct without a 34 M-value random draw.
  const data = new Float32Array(size(shape));
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
