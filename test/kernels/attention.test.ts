/**
 * Fused attention (src/kernels/attention.ts): forward and backward vs float64 on the catalogue's cases
 * (src/check/cases/attention.ts: odd shapes, the subgroup block layouts, masks, causal), gradcheck, fully masked
 * rows; each with the subgroup kernels and with the portable ones.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { familyTest } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { attention } from '../../src/ops/index.ts';
import type { AttentionCase as Case } from '../../src/check/reference/attention.ts';
import { attentionFamily } from '../../src/check/cases/attention.ts';
import { kernelPaths } from '../../src/check/paths.ts';

const t = suite('attention');
const rng = new Rng(2024);

function inputs(c: Case): { q: Float32Array; k: Float32Array; v: Float32Array } {
  return {
    q: rng.normal(c.B * c.H * c.Lq * c.D),
    k: rng.normal(c.B * c.H * c.Lk * c.D),
    v: rng.normal(c.B * c.H * c.Lk * c.Dv),
  };
}

/** A random additive mask with −inf at about a quarter of the positions. */
function randomMask(shape: number[]): { data: Float32Array; shape: number[] } {
  return { data: new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (rng.next() < 0.25 ? -Infinity : 0)), shape };
}

familyTest(t, 'forward and backward match float64 on odd shapes, the subgroup block layouts, additive masks of several broadcast shapes (−inf and −1e9), causal, and both', attentionFamily);

t('gradcheck of q, k and v', async () => {
  await gpu();
  for (const { name: mode, variant } of kernelPaths('subgroups')) {
    const dims = (c: Case) => [
      [c.B, c.H, c.Lq, c.D],
      [c.B, c.H, c.Lk, c.D],
      [c.B, c.H, c.Lk, c.Dv],
    ];
    const cases: Case[] = [
      { B: 1, H: 2, Lq: 5, Lk: 6, D: 3, Dv: 4 },
      { B: 2, H: 1, Lq: 4, Lk: 3, D: 2, Dv: 3, causal: true },
      { B: 1, H: 1, Lq: 3, Lk: 7, D: 4, Dv: 2, mask: randomMask([3, 7]) },
    ];
    for (const c of cases) {
      const { q, k, v } = inputs(c);
      const mask = c.mask ? Tensor.fromArray(c.mask.data, c.mask.shape) : undefined;
      const res = await gradcheck(([a, b, d]) => attention(a, b, d, { mask, causal: c.causal, variant }), [q, k, v], dims(c));
      mask?.dispose();
      assert.ok(res.ok, `${mode}: ${res.message}`);
    }
  }
});

t('a fully masked row gives zeros and finite gradients; a −1e9 row averages v like PyTorch', async () => {
  await gpu();
  for (const { name: mode, variant } of kernelPaths('subgroups')) {
    const c: Case = { B: 1, H: 2, Lq: 4, Lk: 5, D: 3, Dv: 2 };
    const { q, k, v } = inputs(c);
    const maskData = new Float32Array(4 * 5);
    maskData.fill(-Infinity, 5, 10); // row 1: every key masked out
    maskData.fill(-1e9, 15, 20); // row 3: every key at −1e9
    const [qt, kt, vt] = [Tensor.fromArray(q, [1, 2, 4, 3]), Tensor.fromArray(k, [1, 2, 5, 3]), Tensor.fromArray(v, [1, 2, 5, 2])];
    for (const x of [qt, kt, vt]) x.requiresGrad = true;
    const mask = Tensor.fromArray(maskData, [4, 5]);
    const out = attention(qt, kt, vt, { mask, variant });
    const seed = Tensor.fromArray(rng.normal(out.size), out.shape);
    backward(out, seed);
    const o = await out.data();
    for (let h = 0; h < 2; h++) {
      assert.equal([...o.subarray((h * 4 + 1) * 2, (h * 4 + 2) * 2)], [0, 0], `masked row is zero, ${mode}`);
      for (let e = 0; e < 2; e++) {
        let mean = 0;
        for (let j = 0; j < 5; j++) mean += v[(h * 5 + j) * 2 + e] / 5;
        assert.ok(Math.abs(o[(h * 4 + 3) * 2 + e] - mean) < 1e-5, `−1e9 row is the mean of v, ${mode}`);
      }
    }
    const dq = await qt.grad!.data();
    for (const [name, x] of [['dq', qt], ['dk', kt], ['dv', vt]] as const)
      assert.ok((await x.grad!.data()).every(Number.isFinite), `${name} finite, ${mode}`);
    for (let h = 0; h < 2; h++) assert.equal([...dq.subarray((h * 4 + 1) * 3, (h * 4 + 2) * 3)], [0, 0, 0], `no gradient to the masked row, ${mode}`);
    for (const x of [qt, kt, vt, mask, out, seed]) x.dispose();
  }
});

t.run();
