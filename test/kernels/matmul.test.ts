/**
 * The matmul kernel (src/kernels/matmul.ts): transposes, batches and tile-unfriendly sizes against float64
 * (src/check/reference/matmul.ts) with and without subgroups, vec4 rows of B (N % 4 == 0) and not; gradients
 * against finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { batchedMatmul, matmul as refMatmul, transpose } from '../../src/check/reference/matmul.ts';
import { size } from '../../src/check/reference/elementwise.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { matmul } from '../../src/ops/index.ts';
import { subgroupSize, setSubgroupsAllowed } from '../../src/kernels/subgroups.ts';

const t = suite('matmul');
const rng = new Rng(42);

t('matmul matches float64 with transposes, batches and tile-unfriendly sizes, with and without subgroups', async () => {
  await gpu();
  // Subgroup kernel: K chunks of 8 with tails, vec4 B rows when N % 4 == 0, 8 to 64 lanes along N.
  const modes = subgroupSize() ? [true, false] : [false];
  try {
    for (const subgroups of modes) {
      setSubgroupsAllowed(subgroups);
      const mode = subgroups ? 'subgroups' : 'no subgroups';
      for (const [M, K, N] of [[1, 1, 1], [5, 7, 3], [33, 17, 65], [64, 64, 64], [97, 131, 31], [9, 23, 300]]) {
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = rng.uniform(M * K);
          const b = rng.uniform(K * N);
          const aData = ta ? transpose(a, M, K) : a;
          const bData = tb ? transpose(b, K, N) : b;
          const out = tidy(() => matmul(Tensor.fromArray(aData, ta ? [K, M] : [M, K]), Tensor.fromArray(bData, tb ? [N, K] : [K, N]), ta, tb));
          assertClose(await out.data(), refMatmul(a, b, M, K, N), { what: `matmul ${M}×${K}×${N} ${ta}/${tb} ${mode}` });
          out.dispose();
        }
      }
      // Batched, and batched against one shared right-hand side (N = 12: vec4 rows).
      for (const [B, M, K, N, shared] of [[3, 9, 10, 11, false], [3, 10, 9, 12, true]] as const) {
        const a = rng.uniform(B * M * K);
        const b = rng.uniform((shared ? 1 : B) * K * N);
        const out = tidy(() => matmul(Tensor.fromArray(a, [B, M, K]), Tensor.fromArray(b, shared ? [K, N] : [B, K, N])));
        assertClose(await out.data(), batchedMatmul(a, b, B, M, K, N, shared), { what: `batched matmul ${shared ? 'shared B' : ''} ${mode}` });
        out.dispose();
      }
    }
  } finally {
    setSubgroupsAllowed(true);
  }
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
