/**
 * Fused attention (src/kernels/attention.ts): forward and backward vs float64 (src/check/reference/attention.ts),
 * gradcheck, masks, causal, fully masked rows; each with the subgroup kernels and with the portable ones.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { attention } from '../../src/ops/index.ts';
import { setSubgroupsAllowed } from '../../src/kernels/subgroups.ts';
import { attentionRef as reference, type AttentionCase as Case } from '../../src/check/reference/attention.ts';

const t = suite('attention');
const rng = new Rng(2024);

function inputs(c: Case): { q: Float32Array; k: Float32Array; v: Float32Array } {
  return {
    q: rng.normal(c.B * c.H * c.Lq * c.D),
    k: rng.normal(c.B * c.H * c.Lk * c.D),
    v: rng.normal(c.B * c.H * c.Lk * c.Dv),
  };
}

/** A random additive mask with −inf (or `blocked`) at about a quarter of the positions. */
function randomMask(shape: number[], blocked = -Infinity): { data: Float32Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n).map(() => (rng.next() < 0.25 ? blocked : 0));
  return { data, shape };
}

/** Runs forward and backward on the GPU and compares both with the float64 reference. */
async function check(c: Case, what: string, withBackward = true): Promise<void> {
  const { q, k, v } = inputs(c);
  const g = rng.normal(c.B * c.H * c.Lq * c.Dv);
  const want = reference(c, q, k, v, withBackward ? g : undefined);
  const qt = Tensor.fromArray(q, [c.B, c.H, c.Lq, c.D]);
  const kt = Tensor.fromArray(k, [c.B, c.H, c.Lk, c.D]);
  const vt = Tensor.fromArray(v, [c.B, c.H, c.Lk, c.Dv]);
  for (const x of [qt, kt, vt]) x.requiresGrad = withBackward;
  const mask = c.mask ? Tensor.fromArray(c.mask.data, c.mask.shape) : undefined;
  const out = attention(qt, kt, vt, { mask, causal: c.causal, scale: c.scale });
  assert.equal([...out.shape], [c.B, c.H, c.Lq, c.Dv], `${what}: output shape`);
  assertClose(await out.data(), want.out, { what: `${what}: output` });
  if (withBackward) {
    const seed = Tensor.fromArray(g, out.shape);
    backward(out, seed);
    seed.dispose();
    assertClose(await qt.grad!.data(), want.dq, { what: `${what}: dq` });
    assertClose(await kt.grad!.data(), want.dk, { what: `${what}: dk` });
    assertClose(await vt.grad!.data(), want.dv, { what: `${what}: dv` });
  }
  for (const x of [qt, kt, vt, out, mask]) x?.dispose();
}

/** Runs `body` with the subgroup kernels and with the portable ones (`mode` names which, for messages). */
async function bothPaths(body: (mode: string) => Promise<void>): Promise<void> {
  try {
    for (const subgroups of [true, false]) {
      setSubgroupsAllowed(subgroups);
      await body(subgroups ? 'subgroups' : 'no subgroups');
    }
  } finally {
    setSubgroupsAllowed(true);
  }
}

t('forward and backward match float64 on odd shapes', async () => {
  await gpu();
  await bothPaths(async (mode) => {
    await check({ B: 2, H: 3, Lq: 17, Lk: 29, D: 7, Dv: 5 }, `B2 H3 17×29 D7 Dv5, ${mode}`);
    await check({ B: 1, H: 1, Lq: 1, Lk: 1, D: 1, Dv: 1 }, `all ones, ${mode}`);
    await check({ B: 1, H: 2, Lq: 131, Lk: 3, D: 16, Dv: 9, scale: 0.3 }, `Lq past one workgroup, custom scale, ${mode}`);
    // Subgroup block layouts: D = Dv = 32 streams one row per block (vec4 loads), D = 18 / Dv = 12 four rows
    // (scalar loads of q and k), D = 64 / Dv = 48 two rows; D = 128 takes the portable kernels on both paths.
    await check({ B: 1, H: 2, Lq: 70, Lk: 45, D: 32, Dv: 32 }, `D = Dv = 32, ${mode}`);
    await check({ B: 2, H: 1, Lq: 9, Lk: 66, D: 18, Dv: 12 }, `D = 18, Dv = 12, ${mode}`);
    await check({ B: 1, H: 1, Lq: 65, Lk: 19, D: 64, Dv: 48 }, `D = 64, Dv = 48, ${mode}`);
    await check({ B: 1, H: 1, Lq: 67, Lk: 83, D: 128, Dv: 128 }, `D = Dv = 128, ${mode}`);
  });
});

t('additive masks of several broadcast shapes (−inf and −1e9), causal, and both', async () => {
  await gpu();
  await bothPaths(async (mode) => {
    const base = { B: 2, H: 3, Lq: 17, Lk: 29, D: 7, Dv: 5 };
    await check({ ...base, mask: randomMask([17, 29]) }, `mask (Lq, Lk), ${mode}`);
    await check({ ...base, mask: randomMask([2, 1, 1, 29], -1e9) }, `padding mask (B, 1, 1, Lk), −1e9, ${mode}`);
    await check({ ...base, mask: randomMask([3, 17, 29]) }, `mask (Hh, Lq, Lk), ${mode}`);
    await check({ ...base, causal: true }, `causal, Lq < Lk, ${mode}`);
    await check({ B: 1, H: 2, Lq: 80, Lk: 70, D: 5, Dv: 3, causal: true }, `causal, Lq > Lk, several blocks, ${mode}`);
    await check({ ...base, causal: true, mask: randomMask([17, 29], -1e9) }, `causal with a mask, ${mode}`);
    await check({ B: 1, H: 2, Lq: 70, Lk: 75, D: 32, Dv: 32, causal: true, mask: randomMask([1, 2, 70, 75]) }, `D = 32, causal with a mask, ${mode}`);
  });
});

t('gradcheck of q, k and v', async () => {
  await gpu();
  await bothPaths(async (mode) => {
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
      const res = await gradcheck(([a, b, d]) => attention(a, b, d, { mask, causal: c.causal }), [q, k, v], dims(c));
      mask?.dispose();
      assert.ok(res.ok, `${mode}: ${res.message}`);
    }
  });
});

t('a fully masked row gives zeros and finite gradients; a −1e9 row averages v like PyTorch', async () => {
  await gpu();
  await bothPaths(async (mode) => {
    const c: Case = { B: 1, H: 2, Lq: 4, Lk: 5, D: 3, Dv: 2 };
    const { q, k, v } = inputs(c);
    const maskData = new Float32Array(4 * 5);
    maskData.fill(-Infinity, 5, 10); // row 1: every key masked out
    maskData.fill(-1e9, 15, 20); // row 3: every key at −1e9
    const [qt, kt, vt] = [Tensor.fromArray(q, [1, 2, 4, 3]), Tensor.fromArray(k, [1, 2, 5, 3]), Tensor.fromArray(v, [1, 2, 5, 2])];
    for (const x of [qt, kt, vt]) x.requiresGrad = true;
    const mask = Tensor.fromArray(maskData, [4, 5]);
    const out = attention(qt, kt, vt, { mask });
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
  });
});

t.run();
