/**
 * The foundation: device, runtime, tensors, autograd and the gradient checker itself (the kernels of the first ops:
 * test/kernels/elementwise.test.ts, reduce.test.ts, matmul.test.ts).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from '../src/util/rng.ts';
import { assertClose } from './helpers/compare.ts';
import { assertGradchecks, gradcheck } from './helpers/gradcheck.ts';
import * as ref from './helpers/reference.ts';
import { Tensor, parameter } from '../src/tensor/tensor.ts';
import { backward } from '../src/autograd/tape.ts';
import { tidy, noGrad } from '../src/tensor/engine.ts';
import { add, div, mul, scale, relu, sum, mean, reshape, addScalar, matmul, gateLinear, conv2d, attention, batchNorm2d, maximum } from '../src/ops/index.ts';
import { record } from '../src/autograd/tape.ts';
import { binaryMapKernel, unaryMapKernel } from '../src/kernels/elementwise.ts';
import { LimitError } from '../src/runtime/errors.ts';
import { MAX_DISPATCHES_WITHOUT_WAITING } from '../src/runtime/runtime.ts';
import { assertThrowsError } from './helpers/throws.ts';

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
  await assertGradchecks([
    ['reshape', ([a]) => mul(reshape(a, [6, -1]), reshape(a, [6, 2])), [[3, 4]]],
    ['reuse', ([a]) => add(mul(a, a), relu(a)), [[9]]],
  ], (n) => rng.awayFromZero(n));
});

t('the gradient checker catches a deliberately wrong backward', async () => {
  await gpu();
  // square with a backward that forgets the factor 2.
  const wrongSquare = (x: Tensor) => {
    const out = unaryMapKernel('x * x', x, 0, 0, 'square');
    return record('wrong_square', [x], out, { saved: { x }, grads: [(dy, { x }) => mul(dy, x)] });
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
    record('wasteful', [a], unaryMapKernel('x * x', a, 0, 0, 'square'), {
      saved: { a },
      grads: [
        (dy, { a }) => {
          const two = unaryMapKernel('x * 2.0', a, 0, 0, 'twice');
          const copy = unaryMapKernel('x', dy, 0, 0, 'copy');
          unaryMapKernel('x', copy, 0, 0, 'unused');
          return mul(copy, two);
        },
      ],
    });
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

t('the tape runs only the gradient functions of inputs that need a gradient, and their shared work once', async () => {
  await gpu();
  const calls = { shared: 0, first: 0, second: 0 };
  // out = a + b with a rule that counts its calls (a and b of one shape: the gradient of each is dy).
  const probe = (a: Tensor, b: Tensor) =>
    record('probe', [a, b], binaryMapKernel('a + b', a, b, 0, 'probe'), {
      shared: (dy) => (calls.shared++, dy),
      grads: [(dy) => (calls.first++, dy.alias()), (dy) => (calls.second++, dy.alias())],
    });
  const c = Tensor.fromArray([1, 2, 3], [3]);
  const p = parameter(Tensor.fromArray([4, 5, 6], [3]), 'p');
  const run = (f: () => Tensor) => {
    const loss = tidy(() => sum(f()));
    backward(loss);
    loss.dispose();
  };
  run(() => probe(c, p)); // a constant first input
  assert.equal(calls, { shared: 1, first: 0, second: 1 }, 'a constant input');
  run(() => probe(scale(p, 2), c)); // an intermediate that reaches p first
  assert.equal(calls, { shared: 2, first: 1, second: 1 }, 'an intermediate input');
  run(() => probe(p, p));
  assert.equal(calls, { shared: 3, first: 2, second: 2 }, 'both inputs');
  assertClose(await p.grad!.data(), [5, 5, 5], { what: 'p.grad (1 + 2 + 2)' });
  c.dispose();
  p.dispose();
});

t('an op with a kernel per input dispatches none for an input that needs no gradient', async () => {
  const e = await gpu();
  /** The dispatches by label that backward of sum(f()) records. */
  const backwardDispatches = (f: () => Tensor): Record<string, number> => {
    const loss = tidy(() => sum(f()));
    const before = new Map(e.rt.dispatchesByLabel);
    backward(loss);
    loss.dispose();
    const counts: Record<string, number> = {};
    for (const [label, n] of e.rt.dispatchesByLabel) if (n > (before.get(label) ?? 0)) counts[label] = n - (before.get(label) ?? 0);
    return counts;
  };
  const constant = (shape: number[]) => Tensor.fromArray(rng.uniform(ref.size(shape)), shape);
  const param = (shape: number[]) => parameter(constant(shape));
  const running = { mean: Tensor.zeros([3]), var: Tensor.fromArray([1, 1, 1], [3]) };
  // [what, f, labels that must not run, labels that must run]
  const cases: Array<[string, (c: typeof constant, p: typeof param) => Tensor, string[], string[]]> = [
    ['matmul, constant a', (c, p) => matmul(c([3, 4]), p([4, 5])), [], ['matmul']],
    ['gate linear, constant x', (c, p) => gateLinear(c([2, 8]), p([8, 3])), ['gate_linear_grad_x'], ['gate_linear_grad_w']],
    ['gate linear, constant w', (c, p) => gateLinear(p([2, 8]), c([8, 3])), ['gate_linear_grad_w'], ['gate_linear_grad_x']],
    ['conv2d, constant x', (c, p) => conv2d(c([1, 2, 6, 5]), p([3, 2, 3, 3]), p([3]), { padding: 0 }), ['conv2d_grad_input'], ['conv2d_grad_weight']],
    ['conv2d, constant weights', (c, p) => conv2d(p([1, 2, 6, 5]), c([3, 2, 3, 3]), c([3]), { padding: 0 }), ['conv2d_grad_weight'], ['conv2d_grad_input']],
    ['attention, constant q', (c, p) => attention(c([1, 2, 5, 4]), p([1, 2, 6, 4]), p([1, 2, 6, 4])), ['attention_dq'], ['attention_dkv']],
    ['attention, constant k and v', (c, p) => attention(p([1, 2, 5, 4]), c([1, 2, 6, 4]), c([1, 2, 6, 4])), ['attention_dkv'], ['attention_dq']],
    ['batch norm, constant x', (c, p) => batchNorm2d(c([2, 3, 4, 5]), p([3]), p([3]), running, { training: true }), ['batch_norm_grad_x'], ['batch_norm_grad_merge']],
    ['maximum, constant a', (c, p) => maximum(c([6]), p([6])), [], ['maximum_grad']],
  ];
  for (const [what, f, absent, present] of cases) {
    const made: Tensor[] = [];
    const keepTo = (t: Tensor) => (made.push(t), t);
    const counts = backwardDispatches(() => f((s) => keepTo(constant(s)), (s) => keepTo(param(s))));
    for (const label of absent) assert.not.ok(counts[label], `${what}: ${label} ran (${JSON.stringify(counts)})`);
    for (const label of present) assert.ok(counts[label], `${what}: ${label} did not run (${JSON.stringify(counts)})`);
    // Kernels shared by both inputs' gradients (matmul, maximum's mask) ran once: one per input that needs one.
    if (what.startsWith('matmul') || what.startsWith('maximum')) assert.is(counts[present[0]], 1, `${what}: ${present[0]} once`);
    for (const t of made) {
      if (t.requiresGrad) assert.ok(t.grad, `${what}: a parameter got no gradient`);
      t.dispose();
    }
  }
  running.mean.dispose();
  running.var.dispose();
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
  assertThrowsError(() => Tensor.empty([elems]), /needs .* but this adapter allows at most/, LimitError);
});

t.run();
