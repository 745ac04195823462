/**
 * The matmul kernel (src/kernels/matmul.ts): the catalogue's cases (src/check/cases/matmul.ts: transposes, batches,
 * tile-unfriendly sizes, vec4 rows of B and not) against float64 with and without subgroups; gradients against
 * finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertFamily } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { matmul } from '../../src/ops/index.ts';
import { matmulFamily } from '../../src/check/cases/matmul.ts';

const t = suite('matmul');
const rng = new Rng(42);

t('matmul matches float64 with transposes, batches and tile-unfriendly sizes, with and without subgroups', async () => {
  await gpu();
  await assertFamily(matmulFamily);
});

t('matmul gradients (plain, transposed, a weight shared over a batch) pass the finite-difference check', async () => {
  await gpu();
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['matmul', ([a, b]) => matmul(a, b), [[5, 7], [7, 3]]],
    ['matmul transposed', ([a, b]) => matmul(a, b, true, true), [[7, 5], [3, 7]]],
    ['matmul shared weight', ([a, b]) => matmul(a, b), [[2, 4, 6], [6, 3]]],
  ];
  for (const [name, f, shapes] of checks) {
    const r = await gradcheck(f, shapes.map((s) => rng.awayFromZero(size(s))), shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t.run();
