/**
 * Bilinear resizing with align_corners=True (src/kernels/resize.ts): forward and backward (separable gathers
 * through per-axis tables, down and up by any factor, many entries per index when enlarging 10×) against float64 on
 * the catalogue's cases (src/check/cases/resize.ts), corners, finite differences, and maps beyond one storage binding.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, familyTest } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refResize, refResizeGradPlane } from '../../src/check/reference/resize.ts';
import { resizeFamily } from '../../src/check/cases/resize.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { resizeBilinear, scaledSize, sum, mul } from '../../src/ops/index.ts';

const t = suite('resize');
const rng = new Rng(11);

familyTest(t, 'resizeBilinear forward and backward match the align_corners=True formula in float64, down and up, any factor', resizeFamily);

t('resizeBilinear: MoE-Fusion\'s gate sizes; corners map onto corners exactly; the backward passes the finite-difference check', async () => {
  await gpu();
  assert.equal(scaledSize(480, 640, 0.25), [120, 160]);
  assert.equal(scaledSize(480, 640, 0.125), [60, 80]);
  assert.equal([scaledSize(48, 64, 0.25), scaledSize(40, 56, 0.125)], [[12, 16], [5, 7]], 'the catalogue\'s gate sizes');
  const x = Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2]);
  const up = resizeBilinear(x, 3, 3);
  assertClose(await up.data(), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], { what: 'corners' });
  x.dispose();
  up.dispose();
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
