/**
 * Kernel variants (src/kernels/variant.ts): the subgroup lanes a variant's kernels use on this adapter (0 with
 * subgroups off: the portable kernels' tests rely on it), the fixed size only when every subgroup has it; and that a
 * variant is a parameter of the dispatch: consecutive dispatches given different variants run different kernels,
 * with nothing global switched and the engine's default variant untouched.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { engineVariant, fixedSubgroupSize, subgroupSize, type KernelVariant } from '../../src/kernels/variant.ts';
import { recordDispatches } from '../helpers/dispatches.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { conv2d, matmul } from '../../src/ops/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { maxRelError } from '../helpers/compare.ts';
import { clearWeightTransforms } from '../../src/kernels/winograd-weights.ts';

const t = suite('variant');

t('subgroupSize: the adapter\'s lanes (at least 8) when allowed and supported, else 0; fixedSubgroupSize only when min = max', async () => {
  const e = await gpu();
  const info = (e.rt.handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const supported = e.rt.handle.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
  const on = { ...engineVariant(), subgroups: true };
  const lanes = subgroupSize(on);
  assert.is(lanes, supported ? Math.max(8, info?.subgroupMaxSize ?? 8) : 0, 'allowed');
  if (lanes) assert.ok(lanes >= 8 && (lanes & (lanes - 1)) === 0, `${lanes} lanes: a power of two ≥ 8`);
  assert.is(fixedSubgroupSize(on), info?.subgroupMinSize === info?.subgroupMaxSize ? lanes : 0, 'fixed size');
  assert.is(subgroupSize({ ...on, subgroups: false }), 0, 'turned off');
  assert.is(fixedSubgroupSize({ ...on, subgroups: false }), 0, 'turned off: no fixed size either');
  assert.is(subgroupSize(on), lanes, 'turned on again');
  assert.is(subgroupSize(), lanes, "the engine's default allows them");
});

t('variants passed to consecutive dispatches run different kernels (shader keys), the same values, and leave the default alone', async () => {
  const e = await gpu();
  const rng = new Rng(5);
  const before = { ...engineVariant() };
  const x = Tensor.fromArray(rng.uniform(2 * 16 * 12 * 16), [2, 16, 12, 16]);
  const w = Tensor.fromArray(rng.uniform(16 * 16 * 9), [16, 16, 3, 3]);
  const a = Tensor.fromArray(rng.uniform(33 * 40), [33, 40]);
  const b = Tensor.fromArray(rng.uniform(40 * 64), [40, 64]);
  /** The shader keys and labels of what fn dispatches, and its values. */
  const run = async (fn: () => Tensor) => {
    clearWeightTransforms(); // Winograd transforms the weights at each run, not only the first
    const { result: out, specs } = recordDispatches(e.rt, fn);
    const data = await out.data();
    out.dispose();
    return { keys: [...new Set(specs.map((s) => `${s.label}: ${s.key}`))].sort().join(' | '), data };
  };
  const v = (change: Partial<KernelVariant>): KernelVariant => ({ ...before, ...change });
  const lanes = subgroupSize(v({ subgroups: true }));
  const rows = lanes > 0 && fixedSubgroupSize(v({})) > 0 && e.rt.handle.summary.isSoftware;
  const pairs: Array<[string, () => Tensor, () => Tensor, boolean]> = [
    ['conv: Winograd F(6×6) / direct', () => conv2d(x, w, null, { variant: v({ conv: 'winograd6' }) }), () => conv2d(x, w, null, { variant: v({ conv: 'direct' }) }), true],
    ['conv: subgroups / portable', () => conv2d(x, w, null, { variant: v({ conv: 'direct', subgroups: true }) }), () => conv2d(x, w, null, { variant: v({ conv: 'direct', subgroups: false }) }), lanes > 0],
    ['conv: shared rows / not', () => conv2d(x, w, null, { variant: v({ conv: 'direct', rowSharing: true }) }), () => conv2d(x, w, null, { variant: v({ conv: 'direct', rowSharing: false }) }), rows],
    ['matmul: subgroups / portable', () => matmul(a, b, false, false, v({ subgroups: true })), () => matmul(a, b, false, false, v({ subgroups: false })), lanes > 0],
  ];
  try {
    for (const [what, first, second, differ] of pairs) {
      // A, B, A: each dispatch runs its own variant, whatever ran before it.
      const [r1, r2, r3] = [await run(first), await run(second), await run(first)];
      assert.is(r3.keys, r1.keys, `${what}: the first variant again runs its kernels again`);
      if (differ) assert.is.not(r1.keys, r2.keys, `${what}: different kernels (${r1.keys} vs ${r2.keys})`);
      else assert.is(r1.keys, r2.keys, `${what}: this adapter has one path only`);
      assert.ok(maxRelError(r2.data, r1.data) < 1e-4, `${what}: the same values`);
      assert.equal(engineVariant(), before, `${what}: the engine's default variant is unchanged`);
    }
  } finally {
    for (const t of [x, w, a, b]) t.dispose();
  }
});

t.run();
