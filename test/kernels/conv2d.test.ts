/**
 * The (routed) convolution kernel (src/kernels/conv2d.ts): the forward and the input gradient, against float64
 * (src/check/reference/conv2d.ts) on awkward shapes, on every path (subgroups with and without shared input rows,
 * the portable kernels; vec4 rows when the width is a multiple of 4 and not), and against finite differences.
 * Weight and bias gradients: conv2d-grad.test.ts; tensors split into slabs: conv2d-slabs.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { checkConvFiniteDifferences, checkRoutedFiniteDifferences, convGradients, forEachConvMode, ROUTED_TABLE, WIDE_CHANNEL_CASES } from '../helpers/conv.ts';
import { refConv, refConvInputGrad } from '../../src/check/reference/conv2d.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { conv2d, routedConv2d } from '../../src/ops/index.ts';

const t = suite('conv2d');
const rng = new Rng(11);

t('conv2d matches float64 on awkward shapes (k 1 and 3, bias, relu, padding), on every kernel path', async () => {
  await gpu();
  const cases: Array<[number, number, number, number, number, number, boolean, boolean, number?]> = [
    // N, Cin, Cout, H, W, K, bias, relu, padding
    [1, 1, 1, 1, 1, 3, true, false],
    [2, 3, 5, 7, 13, 3, true, true],
    [1, 5, 3, 7, 13, 1, false, false],
    [2, 16, 16, 9, 11, 3, true, true],
    [1, 1, 16, 6, 33, 3, true, false],
    [1, 16, 1, 5, 8, 3, false, true],
    [1, 3, 5, 7, 13, 3, true, false, 0],
    [1, 3, 2, 6, 5, 1, true, false, 1],
    [2, 13, 17, 7, 12, 3, true, true], // width a multiple of 4: vec4 input rows, packed weights
    [1, 20, 8, 5, 4, 3, false, false],
  ];
  await forEachConvMode(async (mode) => {
    for (const [N, Cin, Cout, H, W, K, hasBias, relu, padding] of cases) {
      const x = rng.uniform(N * Cin * H * W);
      const w = rng.uniform(Cout * Cin * K * K);
      const b = hasBias ? rng.uniform(Cout) : null;
      const pad = padding ?? (K - 1) / 2;
      const out = tidy(() =>
        conv2d(Tensor.fromArray(x, [N, Cin, H, W]), Tensor.fromArray(w, [Cout, Cin, K, K]), b && Tensor.fromArray(b, [Cout]), { padding, relu }),
      );
      const want = refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad, relu });
      const what = `conv ${N}×${Cin}→${Cout} ${H}×${W} k${K} p${pad}${hasBias ? ' bias' : ''}${relu ? ' relu' : ''} (${mode})`;
      assert.equal([...out.shape], want.shape, what);
      assertClose(await out.data(), want.data, { what });
      out.dispose();
    }
  });
});

t('conv2d input gradient passes the finite-difference check (with and without relu)', async () => {
  await gpu();
  await checkConvFiniteDifferences(rng, [0]);
});

t('wide channel blocks (13→17, 20→9, routed): input gradients match float64, subgroup kernels and fallback', async () => {
  await gpu();
  await forEachConvMode(async (mode) => {
    for (const c of WIDE_CHANNEL_CASES) {
      const [name, xShape, , Cout, K, tbl] = c;
      const { w, r, dx } = await convGradients(c, rng);
      assertClose(dx, refConvInputGrad(xShape, w, Cout, K, tbl, r), { what: `${name} (${mode}) dx` });
    }
  });
});

t('routedConv2d matches float64 (repeated inputs, an expert never chosen), on every kernel path', async () => {
  await gpu();
  const [Nin, Cin, Cout, E, H, W, K] = [2, 3, 5, 3, 6, 7, 3];
  const x = rng.uniform(Nin * Cin * H * W);
  const w = rng.uniform(E * Cout * Cin * K * K);
  const b = rng.uniform(E * Cout);
  await forEachConvMode(async (mode) => {
    for (const relu of [false, true]) {
      const out = tidy(() =>
        routedConv2d(
          Tensor.fromArray(x, [Nin, Cin, H, W]),
          Tensor.fromArray(w, [E, Cout, Cin, K, K]),
          Tensor.fromArray(b, [E, Cout]),
          Tensor.fromArray(ROUTED_TABLE.flat(), [ROUTED_TABLE.length, 2], 'u32'),
          { relu },
        ),
      );
      const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K, b, table: ROUTED_TABLE, pad: 1, relu });
      assert.equal([...out.shape], want.shape);
      assertClose(await out.data(), want.data, { what: `routed conv relu=${relu} (${mode})` });
      out.dispose();
    }
  });
});

t('routedConv2d input gradient: scatter-add over shared inputs passes the finite-difference check', async () => {
  await gpu();
  const { table } = await checkRoutedFiniteDifferences([0]);
  table.dispose();
});

t.run();
