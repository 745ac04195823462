/**
 * The softmax kernel (src/kernels/softmax.ts) along any axis of (outer, L, inner) layouts: forward and backward
 * against float64 (src/check/reference/softmax.ts), large logits, and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { refSoftmaxAxis, refSoftmaxGradAxis } from '../../src/check/reference/softmax.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { softmax } from '../../src/ops/index.ts';

const t = suite('softmax');
const rng = new Rng(5);

t('softmax matches float64 along every axis and survives large logits', async () => {
  await gpu();
  const shape = [3, 5, 1, 7];
  const x = rng.uniform(size(shape), -4, 4);
  for (const axis of [0, 1, 2, 3, -1]) {
    const out = tidy(() => softmax(Tensor.fromArray(x, shape), axis));
    assertClose(await out.data(), refSoftmaxAxis(x, shape, axis), { what: `softmax axis ${axis}` });
    out.dispose();
  }
  const big = tidy(() => softmax(Tensor.fromArray([1000, 999, -1000], [3])));
  const e = Math.exp(-1);
  assertClose(await big.data(), [1 / (1 + e), e / (1 + e), 0], { what: 'softmax of large logits' });
  big.dispose();
});

t('softmax backward matches float64 (dx = y·(g − Σ g·y)) along every axis', async () => {
  await gpu();
  const shape = [2, 9, 3, 5];
  const x = rng.uniform(size(shape), -4, 4);
  for (const axis of [0, 1, 2, 3]) {
    const xt = Tensor.fromArray(x, shape);
    xt.requiresGrad = true;
    const y = softmax(xt, axis);
    const g = rng.uniform(size(shape));
    const seed = Tensor.fromArray(g, shape);
    backward(y, seed);
    const want = refSoftmaxGradAxis(refSoftmaxAxis(x, shape, axis), g, shape, axis);
    assertClose(await xt.grad!.data(), want, { what: `softmax gradient axis ${axis}` });
    for (const v of [xt, y, seed]) v.dispose();
  }
});

t('softmax gradients pass the finite-difference check', async () => {
  await gpu();
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['softmax last', ([x]) => softmax(x), [[3, 4]]],
    ['softmax middle', ([x]) => softmax(x, 1), [[2, 3, 5]]],
  ];
  for (const [name, f, shapes] of checks) {
    const r = await gradcheck(f, shapes.map((s) => rng.awayFromZero(size(s), 0.05)), shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t.run();
