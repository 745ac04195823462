/** The foundation: device, runtime, tensors, autograd, first ops, and the gradient checker itself. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import * as ref from './helpers/reference.ts';
import { Tensor, parameter } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { tidy, noGrad } from '../src/tensor/engine.ts';
import { add, sub, mul, div, scale, relu, sum, mean, matmul, reshape, addScalar } from '../src/ops/index.ts';
import { record } from '../src/autograd/tape.ts';
import { unaryMapKernel } from '../src/kernels/elementwise.ts';
import { LimitError } from '../src/runtime/errors.ts';
import { MAX_DISPATCHES_WITHOUT_WAITING } from '../src/runtime/runtime.ts';
import { subgroupSize, setSubgroupsAllowed } from '../src/kernels/subgroups.ts';

const t = suite('engine');
const rng = new Rng(42);

t('runs on a WebGPU adapter and reads a kernel result back from a GPU buffer', async () => {
  const e = await gpu();
  assert.ok(e.rt.device, 'device');
  assert.ok(e.rt.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
  const before = e.rt.dispatchCount;
  const x = Tensor.fromArray([1, -2, 3, -4, 5], [5]);
  const y = relu(x);
  assert.is(e.rt.dispatchCount, before + 1, 'one kernel dispatched');
  assert.equal([...(await y.data())], [1, 0, 3, 0, 5]);
  x.dispose();
  y.dispose();
});

t('binary ops broadcast like NumPy (odd shapes)', async () => {
  await gpu();
  const cases: Array<[number[], number[]]> = [
    [[7], [7]],
    [[3, 5], [1]],
    [[1], [2, 3]],
    [[2, 1, 5], [3, 1]],
    [[2, 3, 4, 5], [1, 3, 1, 5]],
    [[1, 1, 13, 17], [3, 2, 1, 1]],
  ];
  const fns: Array<[string, typeof add, (x: number, y: number) => number]> = [
    ['add', add, (x, y) => x + y],
    ['sub', sub, (x, y) => x - y],
    ['mul', mul, (x, y) => x * y],
    ['div', div, (x, y) => x / y],
  ];
  for (const [as, bs] of cases)
    for (const [name, op, f] of fns) {
      const a = rng.uniform(ref.size(as));
      const b = rng.awayFromZero(ref.size(bs), 0.3);
      const out = tidy(() => op(Tensor.fromArray(a, as), Tensor.fromArray(b, bs)));
      const want = ref.broadcastBinary(a, as, b, bs, f);
      assert.equal([...out.shape], want.shape, `${name} shape`);
      assertClose(await out.data(), want.data, { what: `${name} [${as}]·[${bs}]` });
      out.dispose();
    }
});

t('sum and mean over axes match float64, including a long reduction', async () => {
  await gpu();
  const shape = [3, 7, 11, 5];
  const x = rng.uniform(ref.size(shape));
  const xt = Tensor.fromArray(x, shape);
  for (const axes of [[0], [1], [3], [1, 2], [0, 3], [0, 1, 2, 3], [2, 3]]) {
    const s = sum(xt, axes);
    assertClose(await s.data(), ref.sumAxes(x, shape, axes), { what: `sum ${axes}`, rtol: 1e-5 });
    s.dispose();
  }
  // Size-1 axes between reduced or kept ones (the kernel merges neighbouring axes of one kind).
  const shape1 = [2, 1, 3, 1, 4];
  const x1 = rng.uniform(ref.size(shape1));
  const x1t = Tensor.fromArray(x1, shape1);
  for (const axes of [[0, 2], [0, 4], [1, 3], [0, 1, 2], [2, 3, 4]]) {
    const s = sum(x1t, axes);
    assertClose(await s.data(), ref.sumAxes(x1, shape1, axes), { what: `sum [${shape1}] over ${axes}`, rtol: 1e-5 });
    s.dispose();
  }
  x1t.dispose();
  const m = mean(xt, [1, 3], true);
  assert.equal([...m.shape], [3, 1, 11, 1]);
  const want = ref.sumAxes(x, shape, [1, 3]).map((v) => v / 35);
  assertClose(await m.data(), want, { what: 'mean' });
  m.dispose();
  xt.dispose();
  // 1,000,003 elements: split into parts and summed again.
  const big = rng.uniform(1_000_003);
  const bt = Tensor.fromArray(big, [big.length]);
  const bs = sum(bt);
  let want2 = 0;
  for (const v of big) want2 += v;
  const got = await bs.item();
  assert.ok(Math.abs(got - want2) <= 1e-4 * Math.sqrt(big.length), `long sum ${got} vs ${want2}`);
  bt.dispose();
  bs.dispose();
});

t('matmul matches float64 with transposes, batches and tile-unfriendly sizes, with and without subgroups', async () => {
  await gpu();
  // Subgroup kernel: K chunks of 8 with tails, vec4 B rows when N % 4 == 0, 8 to 64 lanes along N.
  const modes = subgroupSize() ? [true, false] : [false];
  try {
    for (const subgroups of modes) {
      setSubgroupsAllowed(subgroups);
      const mode = subgroups ? 'subgroups' : 'no subgroups';
      for (const [M, K, N] of [[1, 1, 1], [5, 7, 3], [33, 17, 65], [64, 64, 64], [97, 131, 31], [9, 23, 300]]) {
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = rng.uniform(M * K);
          const b = rng.uniform(K * N);
          const aData = ta ? ref.transpose(a, M, K) : a;
          const bData = tb ? ref.transpose(b, K, N) : b;
          const out = tidy(() => matmul(Tensor.fromArray(aData, ta ? [K, M] : [M, K]), Tensor.fromArray(bData, tb ? [N, K] : [K, N]), ta, tb));
          assertClose(await out.data(), ref.matmul(a, b, M, K, N), { what: `matmul ${M}×${K}×${N} ${ta}/${tb} ${mode}` });
          out.dispose();
        }
      }
      // Batched, and batched against one shared right-hand side (N = 12: vec4 rows).
      for (const [B, M, K, N, shared] of [[3, 9, 10, 11, false], [3, 10, 9, 12, true]] as const) {
        const a = rng.uniform(B * M * K);
        const b = rng.uniform((shared ? 1 : B) * K * N);
        const out = tidy(() => matmul(Tensor.fromArray(a, [B, M, K]), Tensor.fromArray(b, shared ? [K, N] : [B, K, N])));
        const want = new Float64Array(B * M * N);
        for (let i = 0; i < B; i++) want.set(ref.matmul(a.subarray(i * M * K), b.subarray(shared ? 0 : i * K * N), M, K, N), i * M * N);
        assertClose(await out.data(), want, { what: `batched matmul ${shared ? 'shared B' : ''} ${mode}` });
        out.dispose();
      }
    }
  } finally {
    setSubgroupsAllowed(true);
  }
});

t('gradients of every foundation op pass the finite-difference check', async () => {
  await gpu();
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['add broadcast', ([a, b]) => add(a, b), [[3, 4], [4]]],
    ['sub broadcast', ([a, b]) => sub(a, b), [[2, 3, 1], [3, 5]]],
    ['mul broadcast', ([a, b]) => mul(a, b), [[2, 1, 5], [3, 1]]],
    ['div', ([a, b]) => div(a, b), [[3, 5], [3, 5]]],
    ['scale', ([a]) => scale(a, -2.5), [[7]]],
    ['add scalar', ([a]) => addScalar(a, 3), [[4, 2]]],
    ['relu', ([a]) => relu(a), [[3, 7]]],
    ['sum axes', ([a]) => sum(a, [0, 2]), [[3, 4, 5]]],
    ['mean keepdims', ([a]) => mean(a, 1, true), [[3, 4, 5]]],
    ['matmul', ([a, b]) => matmul(a, b), [[5, 7], [7, 3]]],
    ['matmul transposed', ([a, b]) => matmul(a, b, true, true), [[7, 5], [3, 7]]],
    ['matmul shared weight', ([a, b]) => matmul(a, b), [[2, 4, 6], [6, 3]]],
    ['reshape', ([a]) => mul(reshape(a, [6, -1]), reshape(a, [6, 2])), [[3, 4]]],
    ['reuse', ([a]) => add(mul(a, a), relu(a)), [[9]]],
  ];
  for (const [name, f, shapes] of checks) {
    const data = shapes.map((s) => (name === 'div' && shapes.indexOf(s) === 1 ? rng.awayFromZero(ref.size(s), 0.5) : rng.awayFromZero(ref.size(s))));
    const r = await gradcheck(f, data, shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

t('the gradient checker catches a deliberately wrong backward', async () => {
  await gpu();
  // square with a backward that forgets the factor 2.
  const wrongSquare = (x: Tensor) => {
    const out = unaryMapKernel('x * x', x, 0, 0, 'square');
    return record('wrong_square', [x], out, ([g]) => [mul(g!, x)], [x]);
  };
  const r = await gradcheck(([x]) => wrongSquare(x), [rng.awayFromZero(6, 0.2)], [[6]]);
  assert.not.ok(r.ok, 'a wrong backward must fail the check');
  assert.match(r.message, 'FAILED');
});

t('gradients accumulate over backward calls; no-grad mode records nothing', async () => {
  await gpu();
  const w = parameter(Tensor.fromArray([1, 2, 3], [3]), 'w');
  for (let i = 0; i < 2; i++) {
    const loss = tidy(() => sum(mul(w, w)));
    backward(loss);
    loss.dispose();
  }
  assertClose(await w.grad!.data(), [4, 8, 12], { what: 'accumulated grad' });
  const y = noGrad(() => mul(w, w));
  assert.is(y.node, null, 'no node recorded');
  y.dispose();
  w.dispose();
});

t('the tape frees what a backward rule creates and does not return; a whole training-like step leaks nothing', async () => {
  const e = await gpu();
  const w = parameter(Tensor.fromArray(rng.uniform(256), [256]), 'w');
  const x = Tensor.fromArray(rng.uniform(256), [256]);
  // A rule that makes three temporaries and returns one gradient built from them.
  const wasteful = (a: Tensor) =>
    record('wasteful', [a], unaryMapKernel('x * x', a, 0, 0, 'square'), ([g]) => {
      const two = unaryMapKernel('x * 2.0', a, 0, 0, 'twice');
      const copy = unaryMapKernel('x', g!, 0, 0, 'copy');
      unaryMapKernel('x', copy, 0, 0, 'unused');
      return [mul(copy, two)];
    }, [a]);
  const live0 = e.rt.pool.liveBytes;
  const loss = tidy(() => mean(add(wasteful(w), div(mul(w, x), addScalar(x, 2)))));
  backward(loss);
  loss.dispose();
  assert.is(e.rt.pool.liveBytes - live0, 1024, 'only w.grad (256 floats) stays live');
  const expected = (await w.data()).map((wi, i) => (2 * wi) / 256 + 0);
  const xs = await x.data();
  assertClose(await w.grad!.data(), expected.map((v, i) => v + xs[i] / (xs[i] + 2) / 256), { what: 'gradient', rtol: 1e-5 });
  w.dispose();
  x.dispose();
});

t('tidy disposes intermediates and keeps results; pool reuses buffers', async () => {
  const e = await gpu();
  const x = Tensor.fromArray(rng.uniform(1000), [1000]);
  const live0 = e.rt.pool.liveBytes;
  const y = tidy(() => relu(scale(add(x, x), 2)));
  assert.is(e.rt.pool.liveBytes - live0, 4096, 'only the result stays live');
  y.dispose();
  x.dispose();
  const idle = e.rt.pool.idleBytes;
  assert.ok(idle > 0, 'buffers were returned to the pool');
  assert.throws(() => x.buffer, /after dispose/);
});

t('a synchronous loop that never awaits gets a clear error instead of exhausting the driver; awaiting resets the count', async () => {
  const e = await gpu();
  await e.rt.sync();
  const x = Tensor.fromArray([1, 2, 3], [3]);
  const run = (n: number) => {
    for (let i = 0; i < n; i++) tidy(() => addScalar(x, 1)).dispose();
  };
  run(MAX_DISPATCHES_WITHOUT_WAITING - 10);
  await e.rt.sync();
  await new Promise((r) => setImmediate(r));
  run(MAX_DISPATCHES_WITHOUT_WAITING - 10); // fine: the wait above released the finished work
  assert.throws(() => run(100), /without awaiting anything/);
  await e.rt.sync();
  await new Promise((r) => setImmediate(r));
  assert.equal([...(await x.data())], [1, 2, 3]);
  x.dispose();
});

t('a tensor larger than the adapter allows gives a clear error', async () => {
  const e = await gpu();
  const max = e.rt.limits.maxBufferSize;
  const elems = Math.ceil(max / 4) + 1024;
  try {
    Tensor.empty([elems]);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, LimitError);
    assert.match((err as Error).message, /needs .* but this adapter allows at most/);
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
