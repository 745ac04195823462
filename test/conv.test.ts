/** 2-D convolution and routed (expert) convolution: forward vs float64, gradients vs finite differences, > 128 MiB. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import { refConv, refConvGrads } from './helpers/conv-reference.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { tidy } from '../src/tensor/engine.ts';
import { conv2d, routedConv2d, sum, mul } from '../src/ops/index.ts';
import { subgroupSize, setSubgroupsAllowed } from '../src/kernels/subgroups.ts';
import { setConvRowSharing } from '../src/kernels/conv2d.ts';

const t = suite('conv');
const rng = new Rng(11);

t('conv2d matches float64 on awkward shapes (k 1 and 3, bias, relu, padding)', async () => {
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
  for (const [N, Cin, Cout, H, W, K, hasBias, relu, padding] of cases) {
    const x = rng.uniform(N * Cin * H * W);
    const w = rng.uniform(Cout * Cin * K * K);
    const b = hasBias ? rng.uniform(Cout) : null;
    const pad = padding ?? (K - 1) / 2;
    const out = tidy(() =>
      conv2d(Tensor.fromArray(x, [N, Cin, H, W]), Tensor.fromArray(w, [Cout, Cin, K, K]), b && Tensor.fromArray(b, [Cout]), { padding, relu }),
    );
    const want = refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad, relu });
    const what = `conv ${N}×${Cin}→${Cout} ${H}×${W} k${K} p${pad}${hasBias ? ' bias' : ''}${relu ? ' relu' : ''}`;
    assert.equal([...out.shape], want.shape, what);
    assertClose(await out.data(), want.data, { what });
    out.dispose();
  }
});

t('conv2d gradients of x, w and b pass the finite-difference check (with and without relu)', async () => {
  await gpu();
  const cases: Array<[string, number[][], boolean, number]> = [
    ['k3 relu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], true, 3],
    ['k3 norelu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], false, 3],
    ['k3', [[1, 5, 4, 6], [3, 5, 3, 3], [3]], false, 3],
    ['k1', [[2, 3, 3, 5], [2, 3, 1, 1], [2]], false, 1],
  ];
  for (const [name, shapes, relu] of cases) {
    const inputs = shapes.map((s) => rng.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
    const r = await gradcheck(([x, w, b]) => conv2d(x, w, b, { relu }), inputs, shapes, { maxChecks: 24, h: relu ? 2e-3 : 1e-2 });
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

const routedTable: Array<[number, number]> = [[1, 2], [0, 0], [1, 0]]; // input 1 read twice, expert 1 never chosen

t('wide channel blocks (13→17, 20→9, routed): input, weight and bias gradients match float64, subgroup kernels and fallback', async () => {
  await gpu();
  const cases: Array<[string, number[], number, number, number, Array<[number, number]>]> = [
    // name, x shape, E, Cout, K, table (output sample → [input sample, expert])
    ['13→17 k3', [2, 13, 7, 11], 1, 17, 3, [[0, 0], [1, 0]]],
    ['13→17 k3 width 12', [2, 13, 5, 12], 1, 17, 3, [[0, 0], [1, 0]]],
    ['routed 6→8 E2 width 8', [2, 6, 4, 8], 2, 8, 3, [[1, 1], [0, 0]]],
    ['20→9 k1', [1, 20, 5, 9], 1, 9, 1, [[0, 0]]],
    ['routed 11→17 E3', [2, 11, 6, 7], 3, 17, 3, routedTable],
    // 19 rows: the shared-row kernel's subgroups of 8 rows, their edges and a partial last one.
    ['5→8 k3 19×16', [1, 5, 19, 16], 1, 8, 3, [[0, 0]]],
  ];
  // Subgroups with and without shared input rows, and without subgroups.
  const modes = subgroupSize() ? ['rows', 'subgroups', 'off'] : ['off'];
  try {
    for (const mode of modes) {
      const subgroups = mode !== 'off';
      setSubgroupsAllowed(subgroups);
      setConvRowSharing(mode === 'rows');
      for (const [name, xShape, E, Cout, K, tbl] of cases) {
        const Cin = xShape[1];
        const x = rng.uniform(xShape.reduce((a, d) => a * d, 1));
        const w = rng.uniform(E * Cout * Cin * K * K);
        const b = rng.uniform(E * Cout);
        const r = rng.uniform(tbl.length * Cout * xShape[2] * xShape[3]);
        const xt = Tensor.fromArray(x, xShape);
        const wt = Tensor.fromArray(w, E === 1 ? [Cout, Cin, K, K] : [E, Cout, Cin, K, K]);
        const bt = Tensor.fromArray(b, E === 1 ? [Cout] : [E, Cout]);
        const table = Tensor.fromArray(tbl.flat(), [tbl.length, 2], 'u32');
        for (const p of [xt, wt, bt]) p.requiresGrad = true;
        const loss = tidy(() => {
          const out = E === 1 && tbl.length === xShape[0] ? conv2d(xt, wt, bt) : routedConv2d(xt, wt, bt, table);
          return sum(mul(out, Tensor.fromArray(r, out.shape)));
        });
        backward(loss);
        const want = refConvGrads(x, xShape, w, E, Cout, K, tbl, r);
        const what = `${name} (${mode})`;
        assertClose(await xt.grad!.data(), want.dx, { what: `${what} dx` });
        assertClose(await wt.grad!.data(), want.dw, { what: `${what} dw` });
        assertClose(await bt.grad!.data(), want.db, { what: `${what} db` });
        for (const v of [loss, xt, wt, bt, table]) v.dispose();
      }
    }
  } finally {
    setSubgroupsAllowed(true);
    setConvRowSharing(true);
  }
});

t('convolutions split into channel slabs (a small binding limit): packed weights, forward and gradients vs float64', async () => {
  const e = await gpu();
  // 64 KiB bindings: the 24-channel 24×32 samples split into input slabs of 21 channels and output slabs aligned
  // to the 16-channel blocks of the packed weights ([0, 16), [16, 24)), for the forward and the input gradient.
  const [N, Cin, Cout, H, W, K] = [2, 24, 24, 24, 32, 3];
  const x = rng.uniform(N * Cin * H * W);
  const w = rng.uniform(Cout * Cin * K * K);
  const b = rng.uniform(Cout);
  const r = rng.uniform(N * Cout * H * W);
  e.rt.bindingLimitForTests = 64 * 1024;
  try {
    assert.ok(Cin * H * W * 4 > e.rt.maxBinding, 'one sample exceeds one binding');
    const xt = Tensor.fromArray(x, [N, Cin, H, W]);
    const wt = Tensor.fromArray(w, [Cout, Cin, K, K]);
    const bt = Tensor.fromArray(b, [Cout]);
    for (const p of [xt, wt, bt]) p.requiresGrad = true;
    const out = conv2d(xt, wt, bt);
    assertClose(await out.data(), refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad: 1, relu: false }).data, { what: 'slab forward' });
    // The gradients of Σ out·r, seeded with r (a sum would not fit the binding limit either).
    const seed = Tensor.fromArray(r, out.shape);
    backward(out, seed);
    const want = refConvGrads(x, [N, Cin, H, W], w, 1, Cout, K, [[0, 0], [1, 0]], r);
    assertClose(await xt.grad!.data(), want.dx, { what: 'slab dx' });
    assertClose(await wt.grad!.data(), want.dw, { what: 'slab dw' });
    assertClose(await bt.grad!.data(), want.db, { what: 'slab db' });
    for (const v of [out, seed, xt, wt, bt]) v.dispose();
  } finally {
    e.rt.bindingLimitForTests = null;
  }
});

t('routedConv2d matches float64 (repeated inputs, an expert never chosen)', async () => {
  await gpu();
  const [Nin, Cin, Cout, E, H, W, K] = [2, 3, 5, 3, 6, 7, 3];
  const x = rng.uniform(Nin * Cin * H * W);
  const w = rng.uniform(E * Cout * Cin * K * K);
  const b = rng.uniform(E * Cout);
  for (const relu of [false, true]) {
    const out = tidy(() =>
      routedConv2d(
        Tensor.fromArray(x, [Nin, Cin, H, W]),
        Tensor.fromArray(w, [E, Cout, Cin, K, K]),
        Tensor.fromArray(b, [E, Cout]),
        Tensor.fromArray(routedTable.flat(), [routedTable.length, 2], 'u32'),
        { relu },
      ),
    );
    const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K, b, table: routedTable, pad: 1, relu });
    assert.equal([...out.shape], want.shape);
    assertClose(await out.data(), want.data, { what: `routed conv relu=${relu}` });
    out.dispose();
  }
});

t('routedConv2d gradients: scatter-add over shared inputs, per-expert weights, zero for unused experts', async () => {
  await gpu();
  const table = Tensor.fromArray(routedTable.flat(), [routedTable.length, 2], 'u32');
  const shapes = [[2, 2, 4, 5], [3, 3, 2, 3, 3], [3, 3]];
  // Own generator: inputs chosen once, with no ReLU output within the finite-difference step of its kink.
  const local = new Rng(3);
  const inputs = shapes.map((s) => local.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
  for (const relu of [false, true]) {
    const r = await gradcheck(([x, w, b]) => routedConv2d(x, w, b, table, { relu }), inputs, shapes, { maxChecks: 40, h: relu ? 2e-3 : 1e-2 });
    assert.ok(r.ok, `relu=${relu}: ${r.message}`);
  }
  const [x, w, b] = inputs.map((d, i) => {
    const p = Tensor.fromArray(d, shapes[i]);
    p.requiresGrad = true;
    return p;
  });
  const loss = tidy(() => sum(mul(routedConv2d(x, w, b, table), routedConv2d(x, w, b, table))));
  backward(loss);
  const dw = await w.grad!.data();
  const db = await b.grad!.data();
  const per = 3 * 2 * 3 * 3;
  assert.ok(dw.subarray(per, 2 * per).every((v) => v === 0), 'expert 1 was never chosen: zero weight gradient');
  assert.ok(db.subarray(3, 6).every((v) => v === 0), 'expert 1 was never chosen: zero bias gradient');
  assert.ok(dw.subarray(0, per).some((v) => v !== 0) && dw.subarray(2 * per).some((v) => v !== 0), 'chosen experts get gradients');
  for (const v of [loss, x, w, b, table]) v.dispose();
});

t('tensors larger than one 128 MiB storage binding: forward and all gradients', async () => {
  const e = await gpu();
  // (1, 2, 4100, 4100) float32 = 134.5 MB > 128 MiB: the input (and its gradient) is split by channels.
  const [N, Cin, Cout, H, W, K] = [1, 2, 1, 4100, 4100, 3];
  assert.ok(N * Cin * H * W * 4 > e.rt.maxBinding, 'the case exceeds one binding');
  const x = rng.uniform(N * Cin * H * W);
  const w = rng.uniform(Cout * Cin * K * K);
  const b = rng.uniform(Cout);
  const xt = Tensor.fromArray(x, [N, Cin, H, W]);
  const wt = Tensor.fromArray(w, [Cout, Cin, K, K]);
  const bt = Tensor.fromArray(b, [Cout]);
  for (const p of [xt, wt, bt]) p.requiresGrad = true;
  const out = conv2d(xt, wt, bt);
  const want = refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad: 1, relu: false });
  assertClose(await out.data(), want.data, { what: 'large conv forward' });
  // Loss Σ out: dx[ci] = Σ of the flipped kernel over in-bounds taps, db = H·W, dw = sums of shifted planes.
  backward(tidy(() => sum(out)));
  const dx = await xt.grad!.data();
  const dw = await wt.grad!.data();
  const db = await bt.grad!.data();
  assertClose(db, [H * W], { what: 'large db' });
  const wantDw = new Float64Array(Cin * K * K);
  for (let ci = 0; ci < Cin; ci++) {
    const plane = x.subarray(ci * H * W, (ci + 1) * H * W);
    let total = 0;
    for (const v of plane) total += v;
    for (let ky = 0; ky < K; ky++)
      for (let kx = 0; kx < K; kx++) {
        // Σ over output pixels of x[y+ky-1][x+kx-1]: the whole plane minus the row/column the shift leaves out.
        let s = total;
        if (ky === 0) for (let i = 0; i < W; i++) s -= plane[(H - 1) * W + i];
        if (ky === 2) for (let i = 0; i < W; i++) s -= plane[i];
        if (kx === 0) for (let i = 0; i < H; i++) s -= plane[i * W + W - 1];
        if (kx === 2) for (let i = 0; i < H; i++) s -= plane[i * W];
        if (ky !== 1 && kx !== 1) s += plane[(ky === 0 ? H - 1 : 0) * W + (kx === 0 ? W - 1 : 0)];
        wantDw[ci * K * K + ky * K + kx] = s;
      }
  }
  assertClose(dw, wantDw, { what: 'large dw', rtol: 1e-3 });
  for (let ci = 0; ci < Cin; ci++) {
    const wsum = (ky0: number, ky1: number, kx0: number, kx1: number) => {
      let s = 0;
      for (let ky = ky0; ky <= ky1; ky++) for (let kx = kx0; kx <= kx1; kx++) s += w[ci * K * K + ky * K + kx];
      return s;
    };
    // Interior, corner and edge pixels of each input channel.
    const probes: Array<[number, number, number]> = [
      [H >> 1, W >> 1, wsum(0, 2, 0, 2)],
      [0, 0, wsum(0, 1, 0, 1)],
      [H - 1, W >> 2, wsum(1, 2, 0, 2)],
      [H >> 3, W - 1, wsum(0, 2, 1, 2)],
    ];
    for (const [y, xx, v] of probes) assertClose([dx[ci * H * W + y * W + xx]], [v], { what: `large dx[${ci}][${y}][${xx}]` });
  }
  for (const v of [out, xt, wt, bt]) v.dispose();
});

t.run();
