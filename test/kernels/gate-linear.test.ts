/**
 * The gate's split-K linear map (src/kernels/gate-linear.ts): the catalogue's cases (src/check/cases/gating.ts:
 * odd shapes, the gate's long D over many workgroups, partial sums cut to fit a small binding) forward and both
 * backward products against float64, and finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { familyTest } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { gateLinear } from '../../src/ops/index.ts';
import { gateLinearFamily } from '../../src/check/cases/gating.ts';

const t = suite('gate-linear');
const rng = new Rng(2017);

familyTest(t, 'gateLinear forward and backward (dx = g·wᵀ, dw = xᵀ·g) match float64 on odd shapes, at the gate\'s long D split over many workgroups, and with the partial sums cut to fit one binding', gateLinearFamily);

t('gateLinear backward (dx = g·wᵀ, dw = xᵀ·g) passes gradcheck', async () => {
  await gpu();
  const [B, D, E] = [3, 41, 5];
  const r = await gradcheck((xs) => gateLinear(xs[0], xs[1]), [rng.uniform(B * D), rng.uniform(D * E)], [[B, D], [D, E]], { maxChecks: 24 });
  assert.ok(r.ok, r.message);
});

t.run();
