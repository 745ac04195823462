/**
 * The Winograd 3×3 convolution (src/kernels/conv2d-winograd.ts, conv2d-winograd-grad.ts, winograd-weights.ts,
 * winograd-matrices.ts): the transforms in float64, then the forward, the input gradient and the weight and bias
 * gradients of F(4×4) and F(6×6), with and without subgroups,
 * against float64 (src/check/reference/conv2d.ts) on awkward shapes: 1-pixel images and borders, sizes that are not
 * multiples of the tile, channel counts that are not multiples of 4, routed tables that skip and repeat samples,
 * tensors split into slabs; that the path really runs (the runtime's dispatch counts); and the transformed weights'
 * cache (reused while the weights are unchanged, redone once they are written).
 *
 * Error bounds (test/helpers/winograd.ts), max|a − e| / max|e| over the tensor, inputs and weights uniform in
 * [−1, 1): F(4×4) 2e-5, F(6×6) 6e-5. Measured on 3 to 160 input channels: F(4×4) 1.3e-6 to 6e-6, F(6×6) 2.8e-6 to
 * 1e-5, the direct kernel 1.5e-7 to 1.1e-6. The transforms' constants grow with the tile (F(6×6)'s points ±2, ±½
 * give terms up to 21/4 and 1/90), so float32 rounding does too.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { maxRelError } from '../helpers/compare.ts';
import { refConv, refConvInputGrad } from '../../src/check/reference/conv2d.ts';
import { refConvWeightGrad } from '../../src/check/reference/conv2d-grad.ts';
import { conv2dWeightGradKernel } from '../../src/kernels/conv2d-grad.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences } from '../helpers/conv.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { noGrad, tidy, engine, shutdownEngine } from '../../src/tensor/engine.ts';
import { conv2d, routedConv2d } from '../../src/ops/index.ts';
import { conv2dInputGradKernel } from '../../src/kernels/conv2d.ts';
import { setConvAlgorithm } from '../../src/kernels/conv2d-choice.ts';
import { linearMap, winogradMatrices, WINOGRAD_TILES } from '../../src/kernels/winograd-matrices.ts';
import { clearWeightTransforms } from '../../src/kernels/winograd-weights.ts';
import { forEachWinogradMode, WINOGRAD_BOUND } from '../helpers/winograd.ts';

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

t('forward matches float64 on awkward shapes (1-pixel and odd sizes, channels not multiples of 4, bias, relu), F(4×4) and F(6×6), with and without subgroups', async () => {
  await gpu();
  const cases: Array<[number, number, number, number, number, boolean, boolean]> = [
    // N, Cin, Cout, H, W, bias, relu
    [1, 1, 1, 1, 1, true, false],
    [2, 3, 5, 7, 13, true, true],
    [1, 5, 3, 2, 9, false, false],
    [2, 16, 16, 9, 11, true, true],
    [1, 13, 17, 12, 12, false, true],
    [1, 1, 16, 6, 33, true, false],
    [1, 20, 40, 25, 31, true, true],
    [3, 33, 9, 13, 7, true, false],
  ];
  await forEachWinogradMode(async (mode, m) => {
    for (const [N, Cin, Cout, H, W, hasBias, relu] of cases) {
      const x = rng.uniform(N * Cin * H * W);
      const w = rng.uniform(Cout * Cin * 9);
      const b = hasBias ? rng.uniform(Cout) : null;
      const out = noGrad(() => tidy(() => conv2d(Tensor.fromArray(x, [N, Cin, H, W]), Tensor.fromArray(w, [Cout, Cin, 3, 3]), b && Tensor.fromArray(b, [Cout]), { relu })));
      const want = refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K: 3, b, pad: 1, relu });
      const what = `conv ${N}×${Cin}→${Cout} ${H}×${W}${hasBias ? ' bias' : ''}${relu ? ' relu' : ''} (${mode})`;
      assert.equal([...out.shape], want.shape, what);
      const err = maxRelError(await out.data(), want.data);
      assert.ok(err <= WINOGRAD_BOUND[m], `${what}: relative error ${err.toExponential(2)} > ${WINOGRAD_BOUND[m]}`);
      out.dispose();
    }
  });
});

t('routed forward (an input read twice, one never, an expert never chosen; bias, relu) and the input gradient gather', async () => {
  await gpu();
  const [Nin, Cin, Cout, E, H, W] = [3, 6, 19, 3, 14, 9];
  const table: Array<[number, number]> = [[1, 2], [0, 0], [1, 0], [1, 2]];
  const x = rng.uniform(Nin * Cin * H * W);
  const w = rng.uniform(E * Cout * Cin * 9);
  const b = rng.uniform(E * Cout);
  const g = rng.uniform(table.length * Cout * H * W);
  await forEachWinogradMode(async (mode, m) => {
    for (const relu of [false, true]) {
      const out = noGrad(() => tidy(() =>
        routedConv2d(Tensor.fromArray(x, [Nin, Cin, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), Tensor.fromArray(b, [E, Cout]),
          Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), { relu })));
      const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K: 3, b, table, pad: 1, relu });
      const err = maxRelError(await out.data(), want.data);
      assert.ok(err <= WINOGRAD_BOUND[m], `routed relu=${relu} (${mode}): relative error ${err.toExponential(2)}`);
      out.dispose();
    }
    // Input 2 is read by no output sample: its gradient must be zeros; input 1 sums three.
    const dx = noGrad(() => tidy(() =>
      conv2dInputGradKernel(Tensor.fromArray(g, [table.length, Cout, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]),
        Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), 1, Nin)));
    const got = await dx.data();
    const wantDx = refConvInputGrad([Nin, Cin, H, W], w, Cout, 3, table, g);
    const err = maxRelError(got, wantDx);
    assert.ok(err <= WINOGRAD_BOUND[m], `routed input gradient (${mode}): relative error ${err.toExponential(2)}`);
    assert.ok(got.subarray(2 * Cin * H * W).every((v) => v === 0), `(${mode}) an input no sample read gets a zero gradient`);
    dx.dispose();
  });
});

t('input gradient (plain) matches float64, odd sizes and channel counts', async () => {
  await gpu();
  for (const [N, Cin, Cout, H, W] of [[2, 5, 7, 7, 13], [1, 17, 33, 12, 8], [1, 3, 1, 1, 1]]) {
    const w = rng.uniform(Cout * Cin * 9);
    const g = rng.uniform(N * Cout * H * W);
    const ident = Array.from({ length: N }, (_, n) => [n, 0] as [number, number]);
    const want = refConvInputGrad([N, Cin, H, W], w, Cout, 3, ident, g);
    await forEachWinogradMode(async (mode, m) => {
      const dx = noGrad(() => tidy(() => conv2dInputGradKernel(Tensor.fromArray(g, [N, Cout, H, W]), Tensor.fromArray(w, [1, Cout, Cin, 3, 3]), null, 1, N)));
      const err = maxRelError(await dx.data(), want);
      assert.ok(err <= WINOGRAD_BOUND[m], `input gradient ${N}×${Cout}→${Cin} ${H}×${W} (${mode}): relative error ${err.toExponential(2)}`);
      dx.dispose();
    });
  }
});

t('weight and bias gradients match float64 (plain and routed: an expert never chosen gets zeros), F(4×4) and F(6×6)', async () => {
  await gpu();
  const cases: Array<[number, number, number, number, number, number, Array<[number, number]>]> = [
    // Nin, Cin, Cout, E, H, W, table
    [1, 1, 1, 1, 1, 1, [[0, 0]]],
    [2, 3, 5, 1, 7, 13, [[0, 0], [1, 0]]],
    [3, 6, 19, 3, 14, 9, [[1, 2], [0, 0], [1, 0], [1, 2]]],
    [1, 37, 33, 1, 25, 31, [[0, 0]]],
  ];
  await forEachWinogradMode(async (mode, m) => {
    for (const [Nin, Cin, Cout, E, H, W, table] of cases) {
      const x = rng.uniform(Nin * Cin * H * W);
      const g = rng.uniform(table.length * Cout * H * W);
      const { dw, db } = noGrad(() => tidy(() => conv2dWeightGradKernel(Tensor.fromArray(x, [Nin, Cin, H, W]),
        Tensor.fromArray(g, [table.length, Cout, H, W]), Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), E, 3, 1)));
      const want = refConvWeightGrad(x, [Nin, Cin, H, W], E, Cout, 3, table, g);
      const what = `${Nin}×${Cin}→${Cout} E${E} ${H}×${W} (${mode})`;
      const [gotW, gotB] = [await dw.data(), await db.data()];
      for (const [name, got, exp] of [['dw', gotW, want.dw], ['db', gotB, want.db]] as const) {
        const err = maxRelError(got, exp);
        assert.ok(err <= WINOGRAD_BOUND[m], `${what} ${name}: relative error ${err.toExponential(2)}`);
      }
      if (E === 3) assert.ok(gotW.subarray(Cout * Cin * 9, 2 * Cout * Cin * 9).every((v) => v === 0), `${what}: expert 1 was never chosen`);
      dw.dispose();
      db.dispose();
    }
  });
});

t('all three gradients pass the finite-difference checks with Winograd forced', async () => {
  await gpu();
  await forEachWinogradMode(async () => {
    // The inputs of conv2d.test.ts's check (its generator's first draws), with no ReLU input within a step of its kink.
    await checkConvFiniteDifferences(new Rng(11), [0, 1, 2]);
    (await checkRoutedFiniteDifferences([0, 1, 2])).table.dispose();
  });
});

t('tensors split into slabs (a 2 MiB binding limit): input and output slabs, routed, several bands of tiles', async () => {
  const e = await gpu();
  // 2×48×120×96 inputs (2.2 MB a sample) split into channel slabs; the routed output (3 samples × 24 × 120 × 96,
  // 1.1 MB each) into sample slabs; the transformed tiles into bands that each fit the limit.
  const [Nin, Cin, Cout, E, H, W] = [2, 48, 24, 2, 120, 96];
  const table: Array<[number, number]> = [[1, 1], [0, 0], [1, 0]];
  const x = rng.uniform(Nin * Cin * H * W);
  const w = rng.uniform(E * Cout * Cin * 9);
  const b = rng.uniform(E * Cout);
  const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K: 3, b, table, pad: 1, relu: true });
  const gy = rng.uniform(table.length * Cout * H * W);
  const wantDx = refConvInputGrad([Nin, Cin, H, W], w, Cout, 3, table, gy);
  const wantW = refConvWeightGrad(x, [Nin, Cin, H, W], E, Cout, 3, table, gy);
  await forEachWinogradMode(async (mode, m) => {
    e.rt.bindingLimitForTests = 2 << 20;
    const before = multiplies();
    try {
      assert.ok(Cin * H * W * 4 > e.rt.maxBinding && table.length * Cout * H * W * 4 > e.rt.maxBinding, 'the input and the output need slabs');
      const out = noGrad(() => tidy(() =>
        routedConv2d(Tensor.fromArray(x, [Nin, Cin, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), Tensor.fromArray(b, [E, Cout]),
          Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), { relu: true })));
      const err = maxRelError(await out.data(), want.data);
      assert.ok(err <= WINOGRAD_BOUND[m], `slab forward (${mode}): relative error ${err.toExponential(2)}`);
      out.dispose();
      const dx = noGrad(() => tidy(() =>
        conv2dInputGradKernel(Tensor.fromArray(gy, [table.length, Cout, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]),
          Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), 1, Nin)));
      const errDx = maxRelError(await dx.data(), wantDx);
      assert.ok(errDx <= WINOGRAD_BOUND[m], `slab input gradient (${mode}): relative error ${errDx.toExponential(2)}`);
      dx.dispose();
      const { dw, db } = noGrad(() => tidy(() => conv2dWeightGradKernel(Tensor.fromArray(x, [Nin, Cin, H, W]),
        Tensor.fromArray(gy, [table.length, Cout, H, W]), Tensor.fromArray(table.flat(), [table.length, 2], 'u32'), E, 3, 1)));
      const errDw = maxRelError(await dw.data(), wantW.dw);
      const errDb = maxRelError(await db.data(), wantW.db);
      assert.ok(errDw <= WINOGRAD_BOUND[m] && errDb <= WINOGRAD_BOUND[m], `slab weight gradient (${mode}): relative errors ${errDw.toExponential(2)}, ${errDb.toExponential(2)}`);
      dw.dispose();
      db.dispose();
      assert.ok(multiplies() - before >= 4, `(${mode}) Winograd ran, the tiles in several bands`);
    } finally {
      e.rt.bindingLimitForTests = null;
    }
  });
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
  try {
    setConvAlgorithm('winograd6');
    const [direct, mul, weights] = [count('conv2d'), multiplies(), count('conv2d_winograd6_weights')];
    const first = noGrad(() => conv2d(x, w, null));
    const second = noGrad(() => conv2d(x, w, null));
    assert.is(count('conv2d'), direct, 'the direct kernel did not run');
    assert.is(multiplies() - mul, 2, 'two Winograd multiplies');
    assert.is(count('conv2d_winograd6_weights') - weights, 1, 'the weights were transformed once for both calls');
    assert.equal(await second.data(), await first.data());
    // New weights written into the same tensor: transformed again, and the result follows them.
    const wNew = wData.map((v) => -2 * v);
    rt.upload(w.buffer, 0, wNew);
    const third = noGrad(() => conv2d(x, w, null));
    assert.is(count('conv2d_winograd6_weights') - weights, 2, 'changed weights are transformed again');
    const a = await first.data();
    const c = await third.data();
    assert.ok(c.every((v, i) => Math.abs(v + 2 * a[i]) <= 1e-4 * (1 + Math.abs(a[i]))), 'the output follows the new weights');
    for (const y of [first, second, third]) y.dispose();
    // Forced direct: no Winograd dispatch.
    setConvAlgorithm('direct');
    const m0 = multiplies();
    noGrad(() => conv2d(x, w, null)).dispose();
    assert.is(multiplies(), m0, 'the direct path dispatches no Winograd multiply');
  } finally {
    setConvAlgorithm('auto');
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
  try {
    setConvAlgorithm('winograd6');
    const first = await convolve(); // leaves its transform in the first engine's cache
    shutdownEngine();
    await gpu();
    const second = await convolve();
    clearWeightTransforms(); // releases only the new engine's transforms, into its own pool
    const want = refConv({ x: xData, xShape: [N, Cin, H, W], w: wData, E: 1, Cout, K: 3, b: null, pad: 1, relu: false });
    assert.ok(maxRelError(second, want.data) <= WINOGRAD_BOUND[6], 'the new engine computes the convolution');
    assert.equal(second, first);
  } finally {
    setConvAlgorithm('auto');
  }
});

t.run();
