/**
 * The matmul kernel (src/kernels/matmul.ts): the catalogue's cases (src/check/cases/matmul.ts: transposes, batches,
 * tile-unfriendly sizes, vec4 rows of B and not) against float64 with and without subgroups; gradients against
 * finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { familyTest } from '../helpers/compare.ts';
import { assertGradchecks } from '../helpers/gradcheck.ts';
import { matmul } from '../../src/ops/index.ts';
import { matmulFamily } from '../../src/check/cases/matmul.ts';

const t = suite('matmul');
const rng = new Rng(42);

familyTest(t, 'matmul matches float64 with transposes, batches and tile-unfriendly sizes, with and without subgroups', matmulFamily);

t('matmul gradients (plain, transposed, a weight shared over a batch) pass the finite-difference check', async () => {
  await gpu();
  await assertGradchecks([
    ['matmul', ([a, b]) => matmul(a, b), [[5, 7], [7, 3]]],
    ['matmul transposed', ([a, b]) => matmul(a, b, true, true), [[7, 5], [3, 7]]],
    ['matmul shared weight', ([a, b]) => matmul(a, b), [[2, 4, 6], [6, 3]]],
  ], (n) => rng.awayFromZero(n));
});

t.run();
