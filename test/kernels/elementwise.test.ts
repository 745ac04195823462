/**
 * The elementwise kernels (src/kernels/elementwise.ts): binary maps in every mode (same shape, a scalar operand on
 * either side, NumPy broadcasting) and unary maps, with and without vec4 lanes, and in chunks when a tensor exceeds
 * one storage binding, against float64 (src/check/reference/elementwise.ts); gradients against finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { broadcastBinary, size } from '../../src/check/reference/elementwise.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { backward } from '../../src/autograd/tape.ts';
import { add, sub, mul, div, scale, relu, addScalar } from '../../src/ops/index.ts';
import { binaryMapKernel, fillKernel, midBroadcast, unaryMapKernel, vectorLanes } from '../../src/kernels/elementwise.ts';
import { LimitError } from '../../src/runtime/errors.ts';

const t = suite('elementwise');
const rng = new Rng(42);

t('binary ops broadcast like NumPy (odd shapes)', async () => {
  await gpu();
  const cases: Array<[number[], number[]]> = [
    [[7], [7]],
    [[3, 5], [1]],
    [[1], [2, 3]],
    [[2, 1, 5], [3, 1]],
    [[2, 3, 4, 5], [1, 3, 1, 5]],
    [[1, 1, 13, 17], [3, 2, 1, 1]],
    // One run of broadcast dimensions (the mid modes): vec4 lanes when the trailing size is a multiple of 4.
    [[2, 3, 4, 8], [2, 1, 4, 8]],
    [[2, 1, 5], [2, 3, 5]],
    [[3, 4], [4]],
    [[5, 3], [3]],
    [[2, 3, 6], [2, 3, 1]],
  ];
  const fns: Array<[string, typeof add, (x: number, y: number) => number]> = [
    ['add', add, (x, y) => x + y],
    ['sub', sub, (x, y) => x - y],
    ['mul', mul, (x, y) => x * y],
    ['div', div, (x, y) => x / y],
  ];
  for (const [as, bs] of cases)
    for (const [name, op, f] of fns) {
      const a = rng.uniform(size(as));
      const b = rng.awayFromZero(size(bs), 0.3);
      const out = tidy(() => op(Tensor.fromArray(a, as), Tensor.fromArray(b, bs)));
      const want = broadcastBinary(a, as, b, bs, f);
      assert.equal([...out.shape], want.shape, `${name} shape`);
      assertClose(await out.data(), want.data, { what: `${name} [${as}]·[${bs}]` });
      out.dispose();
    }
});

t('one run of broadcast dimensions is recognised (mid modes), other patterns are not', () => {
  assert.equal(midBroadcast([2, 1, 4, 8], [2, 3, 4, 8]), { mid: 3, inner: 32 });
  assert.equal(midBroadcast([4], [3, 4]), { mid: 3, inner: 4 });
  assert.equal(midBroadcast([2, 3, 1], [2, 3, 6]), { mid: 6, inner: 1 });
  assert.equal(midBroadcast([1, 3, 1, 5], [2, 3, 4, 5]), null);
  assert.equal(midBroadcast([2, 3], [2, 3]), null);
});

t('every mode (same shape, scalar b, scalar a, unary, fill) with and without vec4 lanes, whole and in chunks of a small binding', async () => {
  const e = await gpu();
  // 12 and 5000: vec4 lanes; 4099 and 7: one element per invocation. With 4 KiB bindings the long ones run in
  // chunks of 1024 elements (a last, shorter chunk for 4099 and 5000).
  try {
    for (const limit of [null, 4096]) {
      e.rt.bindingLimitForTests = limit;
      const where = limit ? 'in 4 KiB chunks' : 'whole';
      for (const n of [7, 12, 4099, 5000]) {
        const what = `n = ${n} (${vectorLanes(n) === 4 ? 'vec4' : 'scalar'} lanes) ${where}`;
        const a = rng.uniform(n);
        const b = rng.awayFromZero(n, 0.3);
        const [at, bt, st] = [Tensor.fromArray(a, [n]), Tensor.fromArray(b, [n]), Tensor.fromArray([0.7], [1])];
        const outs: Array<[string, Tensor, Float64Array]> = [
          ['same shape', binaryMapKernel('a * b + p.s0', at, bt, 0.25), broadcastBinary(a, [n], b, [n], (x, y) => x * y + 0.25).data],
          ['scalar b', binaryMapKernel('a / b', at, st), broadcastBinary(a, [n], [0.7], [1], (x, y) => x / Math.fround(y)).data],
          ['scalar a', binaryMapKernel('a - b', st, at), broadcastBinary([0.7], [1], a, [n], (x, y) => Math.fround(x) - y).data],
          ['unary', unaryMapKernel('x * p.s0 + p.s1', at, 2, -1), Float64Array.from(a, (x) => 2 * x - 1)],
          ['fill', fillKernel([n], 3.5), new Float64Array(n).fill(3.5)],
        ];
        for (const [mode, out, want] of outs) {
          assertClose(await out.data(), want, { what: `${mode}, ${what}` });
          out.dispose();
        }
        for (const x of [at, bt, st]) x.dispose();
      }
      // Broadcasting proper cannot be chunked: a clear error instead of a wrong result.
      if (limit) {
        const [a, b] = [Tensor.zeros([2, 2048]), Tensor.zeros([2048])];
        assert.throws(() => binaryMapKernel('a + b', a, b), (err: Error) => err instanceof LimitError && /not supported/.test(err.message));
        for (const x of [a, b]) x.dispose();
      }
    }
  } finally {
    e.rt.bindingLimitForTests = null;
  }
});

t('the backward of add, sub, mul and div skips the gradient of an operand that needs none (a constant map, a target)', async () => {
  const e = await gpu();
  const [as, bs] = [[2, 3, 4, 8], [2, 1, 4, 8]];
  const a = rng.uniform(size(as));
  const b = rng.awayFromZero(size(bs), 0.3);
  const cases: Array<[string, typeof add, (x: number, y: number) => number]> = [
    ['add', add, () => 1],
    ['sub', sub, () => 1],
    ['mul', mul, (_, y) => y],
    ['div', div, (_, y) => 1 / y],
  ];
  for (const [name, op, dOutDa] of cases) {
    const dispatches = async (bNeedsGrad: boolean) => {
      const at = Tensor.fromArray(a, as);
      const bt = Tensor.fromArray(b, bs);
      at.requiresGrad = true;
      bt.requiresGrad = bNeedsGrad;
      const out = op(at, bt);
      const before = e.rt.dispatchCount;
      backward(out, Tensor.fromArray(new Float32Array(out.size).fill(1), out.shape));
      const n = e.rt.dispatchCount - before;
      // d(Σ out)/da: b broadcast along the channels.
      const want = broadcastBinary(a, as, b, bs, dOutDa).data;
      assertClose(await at.grad!.data(), want, { what: `${name}: gradient of a (b ${bNeedsGrad ? 'needs' : 'needs no'} grad)` });
      assert.is(bt.grad === null, !bNeedsGrad, `${name}: b gets a gradient exactly when it needs one`);
      for (const x of [at, bt, out]) x.dispose();
      return n;
    };
    const [withB, withoutB] = [await dispatches(true), await dispatches(false)];
    assert.ok(withoutB < withB, `${name}: ${withoutB} dispatches without b's gradient, ${withB} with it`);
  }
});

t('gradients of add, sub, mul, div (broadcasting), scale, addScalar and relu pass the finite-difference check', async () => {
  await gpu();
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['add broadcast', ([a, b]) => add(a, b), [[3, 4], [4]]],
    ['sub broadcast', ([a, b]) => sub(a, b), [[2, 3, 1], [3, 5]]],
    ['mul broadcast', ([a, b]) => mul(a, b), [[2, 1, 5], [3, 1]]],
    ['div', ([a, b]) => div(a, b), [[3, 5], [3, 5]]],
    ['scale', ([a]) => scale(a, -2.5), [[7]]],
    ['add scalar', ([a]) => addScalar(a, 3), [[4, 2]]],
    ['relu', ([a]) => relu(a), [[3, 7]]],
  ];
  for (const [name, f, shapes] of checks) {
    const data = shapes.map((s) => (name === 'div' && shapes.indexOf(s) === 1 ? rng.awayFromZero(size(s), 0.5) : rng.awayFromZero(size(s))));
    const r = await gradcheck(f, data, shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t('elementwise ops process tensors larger than one storage binding in chunks', async () => {
  const e = await gpu();
  const n = Math.floor(e.rt.maxBinding / 4) + 4099; // just over one binding
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i % 1000) - 500;
  const x = Tensor.fromArray(data, [n]);
  const y = tidy(() => relu(add(x, x)));
  const got = await y.data();
  for (const i of [0, 499, 501, n - 4099, n - 4098, n - 1]) assert.is(got[i], Math.max(0, 2 * data[i]), `element ${i}`);
  x.dispose();
  y.dispose();
});

t.run();
