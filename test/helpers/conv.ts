/**
 * What the convolution tests share (test/kernels/conv2d.test.ts, conv2d-grad.test.ts, conv2d-slabs.test.ts): the
 * kernel paths to run, and the cases and finite-difference checks whose gradients both the input-gradient and the
 * weight-gradient tests check, each for its own inputs.
 */
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { tidy } from '../../src/tensor/engine.ts';
import { conv2d, mul, routedConv2d, sum } from '../../src/ops/index.ts';
import { subgroupSize, setSubgroupsAllowed } from '../../src/kernels/subgroups.ts';
import { setConvRowSharing } from '../../src/kernels/conv2d.ts';
import { setConvAlgorithm } from '../../src/kernels/conv2d-choice.ts';
import { Rng } from '../../src/util/rng.ts';
import { gradcheck } from './gradcheck.ts';

/**
 * Runs body once per path of the direct convolution kernel this adapter has: subgroups with input rows shared
 * between lanes ('rows'), subgroups without ('subgroups'), and the portable kernels ('off'); only 'off' without
 * subgroups. The Winograd path is off meanwhile (its own tests: conv2d-winograd.test.ts). Restores the switches
 * afterwards.
 */
export async function forEachConvMode(body: (mode: string) => Promise<void>): Promise<void> {
  const modes = subgroupSize() ? ['rows', 'subgroups', 'off'] : ['off'];
  try {
    setConvAlgorithm('direct');
    for (const mode of modes) {
      setSubgroupsAllowed(mode !== 'off');
      setConvRowSharing(mode === 'rows');
      await body(mode);
    }
  } finally {
    setSubgroupsAllowed(true);
    setConvRowSharing(true);
    setConvAlgorithm('auto');
  }
}

/** Output sample → [input sample, expert]: input 1 read twice, expert 1 never chosen. */
export const ROUTED_TABLE: Array<[number, number]> = [[1, 2], [0, 0], [1, 0]];

/** name, x shape, E, Cout, K, table (output sample → [input sample, expert]). */
export type ConvGradCase = [string, number[], number, number, number, Array<[number, number]>];

/** Channel counts beyond one channel block (13→17, 20→9), vec4 widths and not, routed experts, odd row counts. */
export const WIDE_CHANNEL_CASES: ConvGradCase[] = [
  ['13→17 k3', [2, 13, 7, 11], 1, 17, 3, [[0, 0], [1, 0]]],
  ['13→17 k3 width 12', [2, 13, 5, 12], 1, 17, 3, [[0, 0], [1, 0]]],
  ['routed 6→8 E2 width 8', [2, 6, 4, 8], 2, 8, 3, [[1, 1], [0, 0]]],
  ['20→9 k1', [1, 20, 5, 9], 1, 9, 1, [[0, 0]]],
  ['routed 11→17 E3', [2, 11, 6, 7], 3, 17, 3, ROUTED_TABLE],
  // 19 rows: the shared-row kernel's subgroups of 8 rows, their edges and a partial last one.
  ['5→8 k3 19×16', [1, 5, 19, 16], 1, 8, 3, [[0, 0]]],
];

/** Random x, w, b and an output projection r for the case, and the gradients of Σ conv(x, w, b)·r the engine computes. */
export async function convGradients(c: ConvGradCase, rng: Rng) {
  const [, xShape, E, Cout, K, tbl] = c;
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
  const [dx, dw, db] = [await xt.grad!.data(), await wt.grad!.data(), await bt.grad!.data()];
  for (const v of [loss, xt, wt, bt, table]) v.dispose();
  return { x, w, b, r, dx, dw, db };
}

/** Which conv2d inputs a finite-difference check covers: 0 x, 1 w, 2 b. The checks throw on failure (no uvu here: test/browser/kernels.ts bundles this file). */
type Checked = number[];

/** conv2d's gradients of the inputs `only` against finite differences, with and without ReLU, k 3 and 1. */
export async function checkConvFiniteDifferences(rng: Rng, only: Checked): Promise<void> {
  const cases: Array<[string, number[][], boolean]> = [
    ['k3 relu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], true],
    ['k3 norelu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], false],
    ['k3', [[1, 5, 4, 6], [3, 5, 3, 3], [3]], false],
    ['k1', [[2, 3, 3, 5], [2, 3, 1, 1], [2]], false],
  ];
  for (const [name, shapes, relu] of cases) {
    const inputs = shapes.map((s) => rng.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
    const r = await gradcheck(([x, w, b]) => conv2d(x, w, b, { relu }), inputs, shapes, { maxChecks: 24, h: relu ? 2e-3 : 1e-2, only });
    if (!r.ok) throw new Error(`${name}: ${r.message}`);
  }
}

/**
 * A routed convolution through ROUTED_TABLE (input 1 read twice, expert 1 never chosen) whose gradients of the inputs
 * `only` pass the finite-difference check with and without ReLU; returns its inputs and table for further checks.
 */
export async function checkRoutedFiniteDifferences(only: Checked): Promise<{ table: Tensor; shapes: number[][]; inputs: Float32Array[] }> {
  const table = Tensor.fromArray(ROUTED_TABLE.flat(), [ROUTED_TABLE.length, 2], 'u32');
  const shapes = [[2, 2, 4, 5], [3, 3, 2, 3, 3], [3, 3]];
  // Own generator: inputs chosen once, with no ReLU output within the finite-difference step of its kink.
  const local = new Rng(3);
  const inputs = shapes.map((s) => local.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
  for (const relu of [false, true]) {
    const r = await gradcheck(([x, w, b]) => routedConv2d(x, w, b, table, { relu }), inputs, shapes, { maxChecks: 40, h: relu ? 2e-3 : 1e-2, only });
    if (!r.ok) throw new Error(`relu=${relu}: ${r.message}`);
  }
  return { table, shapes, inputs };
}
