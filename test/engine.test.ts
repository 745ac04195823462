/**
 * The foundation: device, runtime, tensors, autograd and the gradient checker itself (the kernels of the first ops:
 * test/kernels/elementwise.test.ts, reduce.test.ts, matmul.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from '../src/util/rng.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import * as ref from './helpers/reference.ts';
import { Tensor, parameter } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { tidy, noGrad } from '../src/tensor/engine.ts';
import { add, div, mul, scale, relu, sum, mean, reshape, addScalar } from '../src/ops/index.ts';
import { record } from '../src/autograd/tape.ts';
import { unaryMapKernel } from '../src/kernels/elementwise.ts';
import { LimitError } from '../src/runtime/errors.ts';
import { MAX_DISPATCHES_WITHOUT_WAITING } from '../src/runtime/runtime.ts';

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

t('gradients through reshape and a reused input pass the finite-difference check', async () => {
  await gpu();
  // The ops' own gradients: test/kernels/elementwise.test.ts, reduce.test.ts and matmul.test.ts.
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]> = [
    ['reshape', ([a]) => mul(reshape(a, [6, -1]), reshape(a, [6, 2])), [[3, 4]]],
    ['reuse', ([a]) => add(mul(a, a), relu(a)), [[9]]],
  ];
  for (const [name, f, shapes] of checks) {
    const r = await gradcheck(f, shapes.map((s) => rng.awayFromZero(ref.size(s))), shapes);
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

t.run();
