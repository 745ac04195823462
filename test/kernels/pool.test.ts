/**
 * Average pooling with stride = window and trailing rows dropped (src/kernels/pool.ts): forward and backward
 * against float64 (src/check/reference/pool.ts), finite differences, and maps beyond one storage binding.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refAvgPool, refAvgPoolGrad } from '../../src/check/reference/pool.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { noGrad, tidy } from '../../src/tensor/engine.ts';
import { avgPool2d } from '../../src/ops/index.ts';

const t = suite('pool');
const rng = new Rng(23);

t('avgPool2d matches float64 on odd shapes, dropping trailing rows and columns', async () => {
  await gpu();
  const cases: Array<[number[], number]> = [
    [[1, 1, 7, 5], 2],
    [[3, 5, 11, 13], 3],
    [[3, 1, 2, 7], 2],
    [[1, 5, 9, 3], 3],
    [[1, 2, 5, 1], 1],
    [[3, 5, 29, 31], 2],
  ];
  for (const [shape, k] of cases) {
    const x = rng.uniform(size(shape));
    const out = tidy(() => avgPool2d(Tensor.fromArray(x, shape), k));
    const [n, c, h, w] = shape;
    assert.equal([...out.shape], [n, c, Math.floor(h / k), Math.floor(w / k)], `shape of ${shape} k=${k}`);
    assertClose(await out.data(), refAvgPool(x, shape, k), { what: `avgPool2d ${shape} k=${k}` });
    out.dispose();
  }
  const x = Tensor.zeros([1, 1, 2, 5]);
  assert.throws(() => avgPool2d(x, 3), /smaller than the 3×3 window/);
  assert.throws(() => avgPool2d(Tensor.zeros([2, 5]), 2), /expected \(N, C, H, W\)/);
  x.dispose();
});

t('avgPool2d backward: g/k² over each window, zero on dropped pixels; finite differences', async () => {
  await gpu();
  for (const [shape, k] of [[[3, 5, 7, 11], 2], [[1, 1, 13, 5], 3]] as Array<[number[], number]>) {
    const xd = rng.uniform(size(shape));
    const x = Tensor.fromArray(xd, shape);
    x.requiresGrad = true;
    const out = avgPool2d(x, k);
    const gd = rng.uniform(out.size);
    const g = Tensor.fromArray(gd, out.shape);
    backward(out, g);
    assertClose(await x.grad!.data(), refAvgPoolGrad(gd, shape, k), { what: `avgPool2d grad ${shape} k=${k}` });
    for (const v of [x, out, g]) v.dispose();
  }
  for (const [shape, k] of [[[3, 2, 5, 7], 2], [[1, 3, 7, 5], 3]] as Array<[number[], number]>) {
    const r = await gradcheck(([x]) => avgPool2d(x, k), [rng.uniform(size(shape))], [shape]);
    assert.ok(r.ok, `avgPool2d ${shape} k=${k}: ${r.message}`);
  }
});

t('avgPool2d beyond one storage binding, in groups of planes', async () => {
  const e = await gpu();
  // 3 images of 2×2367×2367: 134.5 MB, over the 128 MiB binding limit. Pooling splits planes into groups: the
  // forward covers that logic (the backward shares it).
  const shape = [3, 2, 2367, 2367];
  const count = size(shape);
  assert.ok(count * 4 > e.rt.maxBinding, 'x exceeds one binding');
  const plane = shape[2] * shape[3];
  // A cheap deterministic pattern (random numbers for 34 M values would dominate the test's time); channel 1 is
  // shifted by 3.
  const xd = new Float32Array(count);
  for (let p = 0, v = 0; p < count / plane; p++)
    for (let i = p * plane; i < (p + 1) * plane; i++, v = (v + 7919) % 10007) xd[i] = v / 10007 - 0.5 + (p % 2) * 3;
  const x = Tensor.fromArray(xd, shape);
  const pooled = noGrad(() => avgPool2d(x, 3));
  assertClose(await pooled.data(), refAvgPool(xd, shape, 3), { what: 'large avgPool2d' });
  for (const v of [x, pooled]) v.dispose();
});

t.run();
