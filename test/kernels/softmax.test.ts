/**
 * The softmax kernel (src/kernels/softmax.ts) along any axis of (outer, L, inner) layouts: forward and backward
 * against float64 on the catalogue's cases (src/check/cases/softmax.ts), large logits, and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose, familyTest } from '../helpers/compare.ts';
import { assertGradchecks } from '../helpers/gradcheck.ts';
import { softmaxFamily } from '../../src/check/cases/softmax.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { softmax } from '../../src/ops/index.ts';

const t = suite('softmax');
const rng = new Rng(5);

familyTest(t, 'softmax and its backward (dx = y·(g − Σ g·y)) match float64 along every axis', softmaxFamily);

t('softmax survives large logits', async () => {
  await gpu();
  const big = tidy(() => softmax(Tensor.fromArray([1000, 999, -1000], [3])));
  const e = Math.exp(-1);
  assertClose(await big.data(), [1 / (1 + e), e / (1 + e), 0], { what: 'softmax of large logits' });
  big.dispose();
});

t('softmax gradients pass the finite-difference check', async () => {
  await gpu();
  await assertGradchecks([
    ['softmax last', ([x]) => softmax(x), [[3, 4]]],
    ['softmax middle', ([x]) => softmax(x, 1), [[2, 3, 5]]],
  ], (n) => rng.awayFromZero(n, 0.05));
});

t.run();
