/**
 * The kernel benchmark (src/bench/kernels.ts) times the kernel catalogue (src/check/cases/): every family's lines
 * marked `bench` and its lines at the working size, by the catalogue's names; the benchmark-only lines run nowhere
 * else (tests, selftest, the browser page).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { benchCases, timeCase } from '../src/bench/kernels.ts';
import { KERNEL_FAMILIES } from '../src/check/kernels.ts';
import { family, runFamily, type CaseFlags } from '../src/check/cases/family.ts';
import { Tensor } from '../src/tensor/tensor.ts';

const t = suite('bench kernels');

t('a bench-only line is timed by the benchmark and skipped by the tests, selftest and the browser page', async () => {
  await gpu();
  const ran: string[] = [];
  const lines: Array<CaseFlags & { n: number }> = [{ n: 1, quick: true, selftest: true }, { n: 2, quick: true, selftest: true, bench: true }, { n: 3, quick: true, selftest: true, bench: 'only' }];
  const f = family('test', 'single', 1, lines, (c) => `n=${c.n}`, async (c) => (ran.push(`n=${c.n}`), []), {
    inputs: (c) => [Tensor.fromArray([c.n], [1])],
    run: (_, [x]) => x.alias(),
    cost: () => ({ unit: 'byte', amount: 4 }),
    working: (w, h) => [{ n: w * h }],
  });
  for (const pick of ['all', 'quick', 'selftest'] as const) await runFamily(f, pick, pick !== 'selftest');
  assert.equal(ran, ['n=1', 'n=2', 'n=1', 'n=2', 'n=1', 'n=2'], 'the tests, the browser page and selftest');
  const timed = f.timed(4, 3);
  assert.equal(timed.map((c) => c.what), ['test: n=2', 'test: n=3', 'test: n=12'], 'the benchmark: bench lines and the working size');
  const p = timed[1].prepare();
  assert.equal([...(await p.run()[0].data())], [3]);
  p.dispose();
});

t('the kernel benchmark times every timed line of the catalogue once, named as in the catalogue, the matmul first', async () => {
  await gpu();
  const names = benchCases(16, 12).map((c) => c.what);
  const catalogue = KERNEL_FAMILIES.flatMap((f) => f.timed(16, 12));
  assert.ok(catalogue.length >= 15, `${catalogue.length} timed catalogue lines`);
  for (const c of catalogue) assert.ok(names.includes(c.what), `${c.what} is timed`);
  assert.is(names[0], 'matmul: 1× 1024×1024·1024×1024', 'the reference rate first');
  assert.is(new Set(names).size, names.length, 'each case once');
  const conv = catalogue.find((c) => c.what === 'conv2d forward: 1×160→64 12×16 k3 bias relu');
  assert.ok(conv, 'a working-size line at the working size');
  assert.ok((await timeCase(conv, 1)) > 0, 'timed');
});

t.run();
