/**
 * L1 losses and MoE-Fusion's gradient and pixel losses against float64 references (the Sobel kernel itself:
 * test/kernels/sobel.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from '../src/util/rng.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import * as ref from './helpers/reference.ts';
import { refSobel, refSobelParts } from '../src/check/reference/sobel.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { l1Loss, maskedL1Loss } from '../src/ops/index.ts';
import { gradientLoss, pixelLoss } from '../src/model/losses.ts';

const t = suite('losses');
const rng = new Rng(23);

function meanAbs(v: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < v.length; k++) s += Math.abs(v[k]);
  return s / v.length;
}

function refGradientLoss(f: Float32Array, vis: Float32Array, ir: Float32Array, shape: number[], gain = 1): number {
  const [gf, gv, gi] = [f, vis, ir].map((x) => refSobel(x, shape));
  return meanAbs(gf.map((v, k) => v - gain * Math.max(gv[k], gi[k])));
}

/** mask has shape (B, 1, H, W), the images (B, C, H, W). */
function refPixelLoss(f: Float32Array, vis: Float32Array, ir: Float32Array, mask: Float32Array, shape: number[]): number {
  const m = ref.broadcastBinary(f, shape, mask, [shape[0], 1, shape[2], shape[3]], (_, u) => u).data;
  const fg = f.map((v, k) => m[k] * v - m[k] * Math.max(vis[k], ir[k]));
  const bg = f.map((v, k) => (1 - m[k]) * v - (1 - m[k]) * ((vis[k] + ir[k]) / 2));
  return meanAbs(Float64Array.from(fg)) + meanAbs(Float64Array.from(bg));
}

/** Smallest distance of any kink argument (each Sobel response, the max's tie, the final difference) from 0. */
function gradientLossMargin(f: Float32Array, vis: Float32Array, ir: Float32Array, shape: number[]): number {
  const parts = [f, vis, ir].map((x) => refSobelParts(x, shape));
  const mags = parts.map(({ gx, gy }) => gx.map((v, k) => Math.abs(v) + Math.abs(gy[k])));
  let margin = Infinity;
  for (let k = 0; k < f.length; k++) {
    for (const { gx, gy } of parts) margin = Math.min(margin, Math.abs(gx[k]), Math.abs(gy[k]));
    margin = Math.min(margin, Math.abs(mags[1][k] - mags[2][k]), Math.abs(mags[0][k] - Math.max(mags[1][k], mags[2][k])));
  }
  return margin;
}

/** Draws images until every kink of the loss is at least `gap` away (finite differences must not cross one). */
function drawAwayFromKinks(count: number, n: number, margin: (xs: Float32Array[]) => number, gap: number): Float32Array[] {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const xs = Array.from({ length: count }, () => rng.uniform(n));
    if (margin(xs) >= gap) return xs;
  }
  throw new Error('could not draw inputs away from the kinks');
}

t('l1Loss and maskedL1Loss match float64, with broadcasting', async () => {
  await gpu();
  const shape = [2, 3, 5, 7];
  const a = rng.uniform(ref.size(shape));
  const b = rng.uniform(ref.size(shape));
  const m = rng.uniform(2 * 5 * 7, 0, 1);
  const mShape = [2, 1, 5, 7];
  const [at, bt, mt] = [Tensor.fromArray(a, shape), Tensor.fromArray(b, shape), Tensor.fromArray(m, mShape)];
  const l1 = l1Loss(at, bt);
  assert.equal([...l1.shape], []);
  assertClose([await l1.item()], [meanAbs(a.map((v, k) => v - b[k]))], { what: 'l1Loss' });
  const ma = ref.broadcastBinary(a, shape, m, mShape, (u, w) => w * u).data;
  const mb = ref.broadcastBinary(b, shape, m, mShape, (u, w) => w * u).data;
  const masked = maskedL1Loss(at, bt, mt);
  assertClose([await masked.item()], [meanAbs(ma.map((v, k) => v - mb[k]))], { what: 'maskedL1Loss' });
  const row = Tensor.fromArray(b.subarray(0, 7), [7]);
  const broadcast = l1Loss(at, row);
  const want = ref.broadcastBinary(a, shape, b.subarray(0, 7), [7], (u, w) => u - w).data;
  assertClose([await broadcast.item()], [meanAbs(want)], { what: 'l1Loss broadcast' });
  for (const v of [at, bt, mt, l1, masked, row, broadcast]) v.dispose();
});

t('l1Loss and maskedL1Loss gradients (every input, the mask included)', async () => {
  await gpu();
  const shape = [2, 2, 3, 5];
  const n = ref.size(shape);
  const mShape = [2, 1, 3, 5];
  const apart = (xs: Float32Array[]) => Math.min(...xs[0].map((v, k) => Math.abs(v - xs[1][k])));
  const [a, b] = drawAwayFromKinks(2, n, apart, 0.02);
  const [row] = drawAwayFromKinks(1, 5, ([r]) => Math.min(...a.map((v, k) => Math.abs(v - r[k % 5]))), 0.02);
  const soft = rng.uniform(ref.size(mShape), 0.2, 0.9);
  const checks: Array<[string, (xs: Tensor[]) => Tensor, Float32Array[], number[][]]> = [
    ['l1Loss', ([x, y]) => l1Loss(x, y), [a, b], [shape, shape]],
    ['l1Loss broadcast', ([x, y]) => l1Loss(x, y), [a, row], [shape, [5]]],
    ['maskedL1Loss soft mask', ([x, y, w]) => maskedL1Loss(x, y, w), [a, b, soft], [shape, shape, mShape]],
  ];
  for (const [name, f, data, shapes] of checks) {
    const r = await gradcheck(f, data, shapes, { h: 1e-3 });
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t('gradientLoss and pixelLoss match float64 references of docs/moe-fusion.md §5', async () => {
  await gpu();
  for (const shape of [[1, 1, 9, 11], [2, 1, 31, 17], [2, 1, 48, 64]]) {
    const n = ref.size(shape);
    const [f, vis, ir] = [rng.uniform(n, 0, 1), rng.uniform(n, 0, 1), rng.uniform(n, 0, 1)];
    const mask = Float32Array.from(rng.uniform(n), (v) => (v > 0.3 ? 1 : 0));
    const [ft, vt, it, mt] = [f, vis, ir, mask].map((d) => Tensor.fromArray(d, shape));
    const g = gradientLoss(ft, vt, it);
    const p = pixelLoss(ft, vt, it, mt);
    assert.equal([...g.shape], []);
    assertClose([await g.item()], [refGradientLoss(f, vis, ir, shape)], { what: `gradientLoss [${shape}]` });
    const g2 = gradientLoss(ft, vt, it, 1.3);
    assertClose([await g2.item()], [refGradientLoss(f, vis, ir, shape, 1.3)], { what: `gradientLoss ×1.3 [${shape}]` });
    g2.dispose();
    assertClose([await p.item()], [refPixelLoss(f, vis, ir, mask, shape)], { what: `pixelLoss [${shape}]` });
    for (const v of [ft, vt, it, mt, g, p]) v.dispose();
  }
  // No boxes (M = 0): only the background term, mean|F − (vis + ir)/2|.
  const f = Tensor.fromArray([0.5, 1], [1, 1, 1, 2]);
  const vis = Tensor.fromArray([0, 1], [1, 1, 1, 2]);
  const ir = Tensor.fromArray([1, 0], [1, 1, 1, 2]);
  const zero = Tensor.zeros([1, 1, 1, 2]);
  const p = pixelLoss(f, vis, ir, zero);
  assertClose([await p.item()], [0.25], { what: 'pixelLoss without boxes' });
  for (const v of [f, vis, ir, zero, p]) v.dispose();
});

t('gradientLoss and pixelLoss gradients reach every input', async () => {
  await gpu();
  const shape = [2, 1, 4, 5];
  const n = ref.size(shape);
  const images = drawAwayFromKinks(3, n, ([f, v, i]) => gradientLossMargin(f, v, i, shape), 0.02);
  const r1 = await gradcheck(([f, v, i]) => gradientLoss(f, v, i), images, [shape, shape, shape], { h: 1e-3 });
  assert.ok(r1.ok, `gradientLoss: ${r1.message}`);
  const pixelMargin = ([f, v, i]: Float32Array[]) =>
    Math.min(...f.map((x, k) => Math.min(Math.abs(v[k] - i[k]), Math.abs(x - Math.max(v[k], i[k])), Math.abs(x - (v[k] + i[k]) / 2))));
  const pix = drawAwayFromKinks(3, n, pixelMargin, 0.02);
  for (const [name, mask] of [
    ['binary mask', Float32Array.from(rng.uniform(n), (v) => (v > 0 ? 1 : 0))],
    ['soft mask', rng.uniform(n, 0.1, 0.9)],
  ] as const) {
    const r = await gradcheck(([f, v, i, m]) => pixelLoss(f, v, i, m), [...pix, mask], [shape, shape, shape, shape], { h: 1e-3 });
    assert.ok(r.ok, `pixelLoss ${name}: ${r.message}`);
  }
});

t.run();
