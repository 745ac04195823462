/**
 * The pointwise activations (src/kernels/activations.ts, evaluated by the elementwise kernels) and the ops built
 * on them: float64 references (src/check/reference/activations.ts), accuracy in the tails, PyTorch's tie rules for
 * maximum/minimum/clamp, and gradients against finite differences.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { broadcastBinary, size } from '../../src/check/reference/elementwise.ts';
import { clamp64, gelu64, sigmoid64, softplus64 } from '../../src/check/reference/activations.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { sigmoid, exp, log, softplus, abs, gelu, maximum, minimum, clamp, sum } from '../../src/ops/index.ts';

const t = suite('activations');
const rng = new Rng(5);

const unary: Array<[string, (x: Tensor) => Tensor, (v: number) => number, number]> = [
  ['sigmoid', sigmoid, sigmoid64, 8],
  ['exp', exp, Math.exp, 3],
  ['softplus', softplus, softplus64, 8],
  ['abs', abs, Math.abs, 5],
  ['gelu', gelu, gelu64, 6],
  ['clamp', (x) => clamp(x, -0.3, 0.45), (v) => clamp64(v, -0.3, 0.45), 1],
];

t('pointwise functions match float64 on awkward shapes', async () => {
  await gpu();
  for (const shape of [[1], [7], [3, 1, 13], [2, 3, 5, 7]])
    for (const [name, op, f, range] of unary) {
      const x = rng.uniform(size(shape), -range, range);
      const out = tidy(() => op(Tensor.fromArray(x, shape)));
      assert.equal([...out.shape], shape);
      assertClose(await out.data(), Float64Array.from(x, f), { what: `${name} [${shape}]` });
      out.dispose();
    }
  const pos = rng.uniform(101, 0.01, 50);
  const l = tidy(() => log(Tensor.fromArray(pos, [101])));
  assertClose(await l.data(), Float64Array.from(pos, Math.log), { what: 'log' });
  l.dispose();
});

t('sigmoid and softplus stay finite and accurate at extreme inputs', async () => {
  await gpu();
  const x = [-100, -30, -17, -5, -1e-3, 0, 1e-3, 5, 17, 30, 100];
  const s = tidy(() => sigmoid(Tensor.fromArray(x, [x.length])));
  const sp = tidy(() => softplus(Tensor.fromArray(x, [x.length])));
  // Relative accuracy matters in the tails (softplus(−30) ≈ 9.4e-14): compare each element to itself.
  const sRef = x.map(sigmoid64);
  const spRef = x.map(softplus64);
  const [sGot, spGot] = [await s.data(), await sp.data()];
  x.forEach((v, i) => {
    assert.ok(Math.abs(sGot[i] - sRef[i]) <= 1e-5 * Math.abs(sRef[i]) + 1e-30, `sigmoid(${v}) = ${sGot[i]}, expected ${sRef[i]}`);
    assert.ok(Math.abs(spGot[i] - spRef[i]) <= 1e-5 * Math.abs(spRef[i]) + 1e-30, `softplus(${v}) = ${spGot[i]}, expected ${spRef[i]}`);
  });
  s.dispose();
  sp.dispose();
});

t('maximum and minimum broadcast; ties split the gradient half/half like torch.maximum', async () => {
  await gpu();
  for (const [as, bs] of [[[5], [5]], [[3, 1, 7], [4, 1]], [[1], [2, 3]], [[2, 3, 1, 5], [3, 11, 1]]]) {
    const a = rng.uniform(size(as));
    const b = rng.uniform(size(bs));
    for (const [name, op, f] of [['maximum', maximum, Math.max], ['minimum', minimum, Math.min]] as const) {
      const out = tidy(() => op(Tensor.fromArray(a, as), Tensor.fromArray(b, bs)));
      const want = broadcastBinary(a, as, b, bs, f);
      assert.equal([...out.shape], want.shape);
      assertClose(await out.data(), want.data, { what: `${name} [${as}]·[${bs}]` });
      out.dispose();
    }
  }
  // Ties: a = [1, 2, 3], b = [1, 5, 0] → ∂max/∂a = [0.5, 0, 1], ∂max/∂b = [0.5, 1, 0]; for min the other way round.
  for (const [op, wantA, wantB] of [[maximum, [0.5, 0, 1], [0.5, 1, 0]], [minimum, [0.5, 1, 0], [0.5, 0, 1]]] as const) {
    const a = Tensor.fromArray([1, 2, 3], [3]);
    const b = Tensor.fromArray([1, 5, 0], [3]);
    a.requiresGrad = b.requiresGrad = true;
    const loss = tidy(() => sum(op(a, b)));
    backward(loss);
    assert.equal([...(await a.grad!.data())], wantA);
    assert.equal([...(await b.grad!.data())], wantB);
    for (const x of [loss, a, b]) x.dispose();
  }
});

t('clamp passes the gradient on its closed range, bounds included (torch.clamp)', async () => {
  await gpu();
  const x = Tensor.fromArray([-2, -1, 0, 1, 2], [5]);
  x.requiresGrad = true;
  const loss = tidy(() => sum(clamp(x, -1, 1)));
  backward(loss);
  assert.equal([...(await x.grad!.data())], [0, 1, 1, 1, 0]);
  loss.dispose();
  x.dispose();
});

t('gradients of the pointwise functions pass the finite-difference check', async () => {
  await gpu();
  const positive = (n: number) => rng.uniform(n, 0.5, 2);
  // Operands of maximum/minimum on interleaved grids (input k on multiples of 0.1 shifted by 0.05·k) never tie.
  const interleaved = (n: number, k: number) => rng.uniform(n).map((v) => Math.round(v * 10) / 10 + 0.05 * k);
  const checks: Array<[string, (xs: Tensor[]) => Tensor, number[][], ((n: number, k: number) => Float32Array)?]> = [
    ['sigmoid', ([x]) => sigmoid(x), [[3, 5]]],
    ['exp', ([x]) => exp(x), [[7]]],
    ['log', ([x]) => log(x), [[2, 3]], positive],
    ['softplus', ([x]) => softplus(x), [[11]]],
    ['abs', ([x]) => abs(x), [[13]]],
    ['gelu', ([x]) => gelu(x), [[3, 7]], (n) => rng.uniform(n, -4, 4)],
    ['maximum broadcast', ([a, b]) => maximum(a, b), [[3, 1, 5], [4, 1]], interleaved],
    ['minimum broadcast', ([a, b]) => minimum(a, b), [[2, 5], [5]], interleaved],
    ['clamp', ([x]) => clamp(x, -0.5, 0.5), [[17]]],
  ];
  for (const [name, f, shapes, gen] of checks) {
    // Values away from the kinks of abs, max/min and clamp (ties at ±0.5 and 0 are excluded by the gap).
    const data = shapes.map((s, k) => (gen ? gen(size(s), k) : spreadFromKinks(rng, size(s))));
    const r = await gradcheck(f, data, shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
});

/** Uniform in (−1, 1) with every value at least 0.05 from 0 and from ±0.5 (finite differences use h = 0.01). */
function spreadFromKinks(r: Rng, n: number): Float32Array {
  const a = r.awayFromZero(n, 0.05);
  for (let i = 0; i < n; i++) if (Math.abs(Math.abs(a[i]) - 0.5) < 0.05) a[i] += a[i] > 0 ? 0.1 : -0.1;
  return a;
}

t.run();
