/**
 * What the convolution tests share (test/kernels/conv2d.test.ts, conv2d-grad.test.ts, conv2d-winograd.test.ts): the
 * finite-difference checks whose gradients both the input-gradient and the weight-gradient tests check, each for its
 * own inputs.
 */
import { Tensor } from '../../src/tensor/tensor.ts';
import { conv2d, routedConv2d } from '../../src/ops/index.ts';
import { ROUTED_TABLE } from '../../src/check/cases/conv2d.ts';
import { Rng } from '../../src/util/rng.ts';
import type { KernelVariant } from '../../src/kernels/variant.ts';
import { gradcheck } from './gradcheck.ts';

/** Which conv2d inputs a finite-difference check covers: 0 x, 1 w, 2 b. The checks throw on failure. */
type Checked = number[];

/** conv2d's gradients of the inputs `only` against finite differences, with and without ReLU, k 3 and 1. */
export async function checkConvFiniteDifferences(rng: Rng, only: Checked, variant?: KernelVariant): Promise<void> {
  const cases: Array<[string, number[][], boolean]> = [
    ['k3 relu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], true],
    ['k3 norelu', [[2, 3, 5, 7], [4, 3, 3, 3], [4]], false],
    ['k3', [[1, 5, 4, 6], [3, 5, 3, 3], [3]], false],
    ['k1', [[2, 3, 3, 5], [2, 3, 1, 1], [2]], false],
  ];
  for (const [name, shapes, relu] of cases) {
    const inputs = shapes.map((s) => rng.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
    const r = await gradcheck(([x, w, b]) => conv2d(x, w, b, { relu, variant }), inputs, shapes, { maxChecks: 24, h: relu ? 2e-3 : 1e-2, only });
    if (!r.ok) throw new Error(`${name}: ${r.message}`);
  }
}

/**
 * A routed convolution through ROUTED_TABLE (input 1 read twice, expert 1 never chosen) whose gradients of the inputs
 * `only` pass the finite-difference check with and without ReLU; returns its inputs and table for further checks.
 */
export async function checkRoutedFiniteDifferences(only: Checked, variant?: KernelVariant): Promise<{ table: Tensor; shapes: number[][]; inputs: Float32Array[] }> {
  const table = Tensor.fromArray(ROUTED_TABLE.flat(), [ROUTED_TABLE.length, 2], 'u32');
  const shapes = [[2, 2, 4, 5], [3, 3, 2, 3, 3], [3, 3]];
  // Own generator: inputs chosen once, with no ReLU output within the finite-difference step of its kink.
  const local = new Rng(3);
  const inputs = shapes.map((s) => local.awayFromZero(s.reduce((n, d) => n * d, 1), 0.05));
  for (const relu of [false, true]) {
    const r = await gradcheck(([x, w, b]) => routedConv2d(x, w, b, table, { relu, variant }), inputs, shapes, { maxChecks: 40, h: relu ? 2e-3 : 1e-2, only });
    if (!r.ok) throw new Error(`relu=${relu}: ${r.message}`);
  }
  return { table, shapes, inputs };
}
