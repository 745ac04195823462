/**
 * The Winograd 3×3 convolution (src/kernels/conv2d-winograd.ts, conv2d-winograd-grad.ts, winograd-weights.ts,
 * winograd-matrices.ts): the transforms in float64, then the forward, the input gradient and the weight and bias
 * gradients of F(4×4) and F(6×6), with and without subgroups, against float64 on the catalogue's awkward shapes
 * (src/check/cases/conv2d.ts: 1-pixel images and borders, sizes that are not multiples of the tile, channel counts
 * that are not multiples of 4, routed tables that skip and repeat samples, tensors split into slabs); that the path
 * really runs (the runtime's dispatch counts); and the transformed weights' cache (reused while the weights are
 * unchanged, redone once they are written).
 *
 * Error bounds (WINOGRAD_TOLERANCE, src/check/cases/family.ts), max|a − e| / max|e| over the tensor, inputs and weights uniform in
 * [−1, 1): F(4×4) 2e-5, F(6×6) 6e-5. Measured on 3 to 160 input channels: F(4×4) 1.3e-6 to 6e-6, F(6×6) 2.8e-6 to
 * 1e-5, the direct kernel 1.5e-7 to 1.1e-6. The transforms' constants grow with the tile (F(6×6)'s points ±2, ±½
 * give terms up to 21/4 and 1/90), so float32 rounding does too.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertFamily, maxRelError } from '../helpers/compare.ts';
import { refConv } from '../../src/check/reference/conv2d.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences } from '../helpers/conv.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { noGrad, engine, shutdownEngine } from '../../src/tensor/engine.ts';
import { conv2d } from '../../src/ops/index.ts';
import { engineVariant, withKernelVariant } from '../../src/kernels/variant.ts';
import { linearMap, winogradMatrices, WINOGRAD_TILES } from '../../src/kernels/winograd-matrices.ts';
import { clearWeightTransforms } from '../../src/kernels/winograd-weights.ts';
import { winogradFamily } from '../../src/check/cases/conv2d.ts';
import { WINOGRAD_TOLERANCE } from '../../src/check/cases/family.ts';
import { kernelPaths } from '../../src/check/paths.ts';

const t = suite('conv2d-winograd');
const rng = new Rng(27);

const matmul = (A: number[][], B: number[][]) => A.map((row) => B[0].map((_, j) => row.reduce((s, v, k) => s + v * B[k][j], 0)));
const transpose = (A: number[][]) => A[0].map((_, j) => A.map((row) => row[j]));

t('the transforms compute a 3×3 correlation exactly (float64), and their generated statements match the matrices', () => {
  for (const m of WINOGRAD_TILES) {
    const { alpha, AT, G, BT } = winogradMatrices(m);
    const d = Array.from({ length: alpha }, () => Array.from(rng.uniform(alpha), Number));
    const g = Array.from({ length: 3 }, () => Array.from(rng.uniform(3), Number));
    const U = matmul(matmul(G, g), transpose(G));
    const V = matmul(matmul(BT, d), transpose(BT));
    const Mx = U.map((row, i) => row.map((u, j) => u * V[i][j]));
    const Y = matmul(matmul(AT, Mx), transpose(AT));
    for (let y = 0; y < m; y++)
      for (let x = 0; x < m; x++) {
        let want = 0;
        for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) want += d[y + ky][x + kx] * g[ky][kx];
        assert.ok(Math.abs(Y[y][x] - want) < 1e-9, `F(${m}): output (${y}, ${x}) is ${Y[y][x]}, want ${want}`);
      }
    if (m > 2) {
      // The weight gradient's F(3×3, m×m): the 3×3 correlation of the α×α patch with an m×m tile, same Bᵀ.
      const w = winogradMatrices(3, m);
      assert.equal(w.BT, BT, `F(3, ${m}) shares the input transform`);
      const gt = Array.from({ length: m }, () => Array.from(rng.uniform(m), Number));
      const Uw = matmul(matmul(w.G, gt), transpose(w.G));
      const Yw = matmul(matmul(w.AT, Uw.map((row, i) => row.map((u, j) => u * V[i][j]))), transpose(w.AT));
      for (let ky = 0; ky < 3; ky++)
        for (let kx = 0; kx < 3; kx++) {
          let want = 0;
          for (let y = 0; y < m; y++) for (let x = 0; x < m; x++) want += d[y + ky][x + kx] * gt[y][x];
          assert.ok(Math.abs(Yw[ky][kx] - want) < 1e-9, `F(3, ${m}): tap (${ky}, ${kx}) is ${Yw[ky][kx]}, want ${want}`);
        }
    }
    // The WGSL statements of each transform, run as JavaScript (`let` declarations and arithmetic are the same).
    for (const [name, C] of [['Bᵀ', BT], ['Aᵀ', AT], ['G', G]] as const) {
      const input = Array.from(rng.uniform(C[0].length), Number);
      const code = linearMap(C, (k) => `in${k}`, (r) => `out${r}`, 'tmp_').join('\n');
      const fn = new Function(...input.map((_, k) => `in${k}`), `${code.replace(/\blet\b/g, 'const')}\nreturn [${C.map((_, r) => `out${r}`).join(', ')}];`);
      const got = fn(...input) as number[];
      C.forEach((row, r) => {
        const want = row.reduce((s, c, k) => s + Math.fround(c) * input[k], 0);
        assert.ok(Math.abs(got[r] - want) < 1e-9, `F(${m}) ${name} row ${r}: ${got[r]} ≠ ${want}`);
      });
    }
  }
});

t('forward and gradients match float64 on awkward shapes (1-pixel and odd sizes, channels not multiples of 4, bias, relu, routed tables that skip and repeat samples, slabs), F(4×4) and F(6×6), with and without subgroups; zeros for an input no sample reads and an expert never chosen', async () => {
  const e = await gpu();
  // The slab case runs the forward twice (once for the gradients) and the input gradient: one multiply each unless
  // the tiles fall into several bands.
  let before = multiplies();
  await assertFamily(winogradFamily, (c) => {
    if (c.what.includes('KiB bindings')) assert.ok(multiplies() - before > 3, `${c.what}: Winograd ran, the tiles in several bands (${multiplies() - before} multiplies)`);
    before = multiplies();
  });
  assert.is(e.rt.bindingLimitForTests, null);
});

t('all three gradients pass the finite-difference checks with Winograd forced', async () => {
  await gpu();
  for (const { variant } of kernelPaths('winograd')) {
    // The inputs of conv2d.test.ts's check (its generator's first draws), with no ReLU input within a step of its kink.
    await checkConvFiniteDifferences(new Rng(11), [0, 1, 2], variant);
    (await checkRoutedFiniteDifferences([0, 1, 2], variant)).table.dispose();
  }
});

const multiplies = () => engine().rt.dispatchesByLabel.get('conv2d_winograd_multiply') ?? 0;

t('the forced Winograd path runs (dispatch counts) and the direct kernel does not; the transformed weights are reused until the weights change', async () => {
  await gpu();
  clearWeightTransforms();
  const rt = engine().rt;
  const count = (label: string) => rt.dispatchesByLabel.get(label) ?? 0;
  const [N, Cin, Cout, H, W] = [1, 8, 16, 10, 10];
  const x = Tensor.fromArray(rng.uniform(N * Cin * H * W), [N, Cin, H, W]);
  const wData = rng.uniform(Cout * Cin * 9);
  const w = Tensor.fromArray(wData, [Cout, Cin, 3, 3]);
  const winograd6 = { variant: { ...engineVariant(), conv: 'winograd6' as const } };
  try {
    const [direct, mul, weights] = [count('conv2d'), multiplies(), count('conv2d_winograd6_weights')];
    const first = noGrad(() => conv2d(x, w, null, winograd6));
    const second = noGrad(() => conv2d(x, w, null, winograd6));
    assert.is(count('conv2d'), direct, 'the direct kernel did not run');
    assert.is(multiplies() - mul, 2, 'two Winograd multiplies');
    assert.is(count('conv2d_winograd6_weights') - weights, 1, 'the weights were transformed once for both calls');
    assert.equal(await second.data(), await first.data());
    // New weights written into the same tensor: transformed again, and the result follows them.
    const wNew = wData.map((v) => -2 * v);
    rt.upload(w.buffer, 0, wNew);
    const third = noGrad(() => conv2d(x, w, null, winograd6));
    assert.is(count('conv2d_winograd6_weights') - weights, 2, 'changed weights are transformed again');
    const a = await first.data();
    const c = await third.data();
    assert.ok(c.every((v, i) => Math.abs(v + 2 * a[i]) <= 1e-4 * (1 + Math.abs(a[i]))), 'the output follows the new weights');
    for (const y of [first, second, third]) y.dispose();
    // Forced direct: no Winograd dispatch.
    const m0 = multiplies();
    noGrad(() => conv2d(x, w, null, { variant: { ...engineVariant(), conv: 'direct' } })).dispose();
    assert.is(multiplies(), m0, 'the direct path dispatches no Winograd multiply');
  } finally {
    x.dispose();
    w.dispose();
  }
});

t('transformed weights kept by one engine stay with it: a new engine (after shutdown) transforms and releases its own', async () => {
  await gpu();
  const [N, Cin, Cout, H, W] = [1, 5, 6, 7, 9];
  const xData = rng.uniform(N * Cin * H * W);
  const wData = rng.uniform(Cout * Cin * 9);
  const convolve = async () => {
    const x = Tensor.fromArray(xData, [N, Cin, H, W]);
    const w = Tensor.fromArray(wData, [Cout, Cin, 3, 3]);
    const y = noGrad(() => conv2d(x, w, null));
    const out = await y.data();
    for (const t of [x, w, y]) t.dispose();
    return out;
  };
  const first = await withKernelVariant({ conv: 'winograd6' }, convolve); // leaves its transform in the first engine's cache
  shutdownEngine();
  await gpu();
  const second = await withKernelVariant({ conv: 'winograd6' }, convolve);
  clearWeightTransforms(); // releases only the new engine's transforms, into its own pool
  const want = refConv({ x: xData, xShape: [N, Cin, H, W], w: wData, E: 1, Cout, K: 3, b: null, pad: 1, relu: false });
  assert.ok(maxRelError(second, want.data) <= WINOGRAD_TOLERANCE[6], 'the new engine computes the convolution');
  assert.equal(second, first);
});

t.run();
