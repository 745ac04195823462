/**
 * Convolutions of tensors larger than one storage binding (src/kernels/conv2d-slabs.ts): the slab plan itself, and
 * the forward and all gradients beyond a real 128 MiB binding. The forward and the gradients under a small binding
 * limit on every kernel path are cases of the catalogue (src/check/cases/conv2d.ts, `binding`), run by
 * conv2d.test.ts, conv2d-grad.test.ts and conv2d-winograd.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { refConv } from '../../src/check/reference/conv2d.ts';
import { CONV_FORWARD_CASES, CONV_GRADIENT_CASES, WINOGRAD_CASES } from '../../src/check/cases/conv2d.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { conv2d, sum } from '../../src/ops/index.ts';
import { planSlabs } from '../../src/kernels/conv2d-slabs.ts';
import { ALIGN_ELEMS } from '../../src/kernels/program.ts';

const t = suite('conv2d-slabs');
const rng = new Rng(11);

t('the slab plan: one slab when the tensor fits, groups of whole samples, aligned channel ranges, an error for a plane beyond one binding', async () => {
  const e = await gpu();
  // 64 KiB bindings hold 16 384 floats, 16 320 of them with the alignment slack.
  e.rt.bindingLimitForTests = 64 * 1024;
  try {
    const check = (shape: number[], align: number, want: number[][]) => {
      const [n, c, h, w] = shape;
      const x = Tensor.empty(shape);
      const slabs = planSlabs(x, n, c, h * w, 'test', align);
      const what = `[${shape}] align ${align}`;
      assert.equal(slabs.map((s) => [s.nLo, s.nHi, s.cLo, s.cHi]), want, `${what}: slabs`);
      for (const s of slabs) {
        const start = s.range.offset! / 4;
        const count = s.range.size! / 4;
        const elems = s.nHi - s.nLo > 1 ? (s.nHi - s.nLo) * c * h * w : (s.cHi - s.cLo) * h * w;
        assert.ok(s.range.size! <= e.rt.maxBinding, `${what}: a slab fits one binding`);
        if (slabs.length > 1) assert.is(start % ALIGN_ELEMS, 0, `${what}: bound at an aligned offset`);
        assert.is(start + s.base, s.nLo * c * h * w + s.cLo * h * w, `${what}: base is the slab's first element`);
        assert.ok(s.base + elems <= count, `${what}: the range holds the whole slab`);
      }
      x.dispose();
    };
    check([2, 3, 5, 7], 1, [[0, 2, 0, 3]]); // fits: the whole tensor
    check([7, 3, 40, 25], 1, [[0, 5, 0, 3], [5, 7, 0, 3]]); // 3000-element samples: 5 per slab
    check([2, 24, 24, 32], 1, [[0, 1, 0, 21], [0, 1, 21, 24], [1, 2, 0, 21], [1, 2, 21, 24]]); // 21 planes per slab
    check([2, 24, 24, 32], 16, [[0, 1, 0, 16], [0, 1, 16, 24], [1, 2, 0, 16], [1, 2, 16, 24]]); // output slabs on weight blocks
    check([1, 20, 40, 50], 16, [[0, 1, 0, 8], [0, 1, 8, 16], [0, 1, 16, 20]]); // fewer than 16 planes fit: 8 per slab
    const huge = Tensor.empty([1, 1, 100, 200]);
    assert.throws(() => planSlabs(huge, 1, 1, 20000, 'conv2d input'), /conv2d input: one 20000-element channel plane exceeds one storage binding/);
    huge.dispose();
  } finally {
    e.rt.bindingLimitForTests = null;
  }
});

t('the catalogue\'s slab cases (conv2d and conv2d-grad tests, Winograd) exceed their binding limit: their inputs or outputs are split', () => {
  const cases = [...CONV_FORWARD_CASES, ...CONV_GRADIENT_CASES, ...WINOGRAD_CASES].filter((c) => c.binding);
  assert.ok(cases.length >= 4, `${cases.length} slab cases`);
  for (const c of cases) {
    const [, Cin, H, W] = c.x;
    assert.ok(Math.max(Cin, c.Cout) * H * W * 4 > c.binding!, `[${c.x}] → ${c.Cout}: one sample exceeds ${c.binding} bytes`);
  }
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
