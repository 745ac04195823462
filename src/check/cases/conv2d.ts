/**
 * Convolution cases: the direct kernel's forward and its three gradients (src/kernels/conv2d.ts, conv2d-grad.ts),
 * plain and routed, also split into channel slabs (conv2d-slabs.ts), and the same with Winograd forced
 * (conv2d-winograd.ts, conv2d-winograd-grad.ts). A case earns its place by being awkward: odd sizes, widths that are
 * and are not multiples of 4 (vec4 rows), more channels than one block or subgroup, routing tables that repeat and
 * skip inputs and experts, tensors beyond one storage binding.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { engine, noGrad, tidy } from '../../tensor/engine.ts';
import { backward } from '../../autograd/tape.ts';
import { conv2d, routedConv2d } from '../../ops/index.ts';
import type { Rng } from '../../util/rng.ts';
import type { KernelPath } from '../paths.ts';
import { compareExact, compareValues, type Comparison } from '../compare.ts';
import { refConv } from '../reference/conv2d.ts';
import { refConvGrads } from '../reference/conv2d-grad.ts';
import { compareTensor, family, FORWARD_TOLERANCE, GRADIENT_TOLERANCE, gradOf, leaf, size, toleranceOf, type CaseFlags, type Timing } from './family.ts';
import type { KernelVariant } from '../../kernels/variant.ts';

type Table = ReadonlyArray<readonly [number, number]>;

export interface ConvCase extends CaseFlags {
  /** The input's shape: N, Cin, H, W. */
  x: readonly [number, number, number, number];
  Cout: number;
  K: number;
  /** A routed convolution: E experts, output sample o = conv(x[table[o][0]], w[table[o][1]]). */
  E?: number;
  table?: Table;
  /** With a bias (default) or without. */
  bias?: boolean;
  relu?: boolean;
  /** Zero padding (default (K − 1) / 2). */
  pad?: number;
  /** Also the input, weight and bias gradients of Σ conv·r (without the ReLU; the default padding). */
  grads?: boolean;
  /** Storage bindings of this many bytes at most: the tensors are split into slabs. */
  binding?: number;
}

/** Output sample → [input sample, expert]: input 1 read twice, expert 1 never chosen. */
export const ROUTED_TABLE: Table = [[1, 2], [0, 0], [1, 0]];
/** Four outputs of three inputs: input 1 read three times, input 2 never, expert 1 never chosen. */
const SKIPPING_TABLE: Table = [[1, 2], [0, 0], [1, 0], [1, 2]];
/** Top-2 of 4 experts for 2 samples (experts 2, 0 and 1, 3). */
const TOP2_TABLE: Table = [[0, 2], [0, 0], [1, 1], [1, 3]];
const KiB = 1024;

/** The direct kernel's forward: plain, routed, and over channel slabs. */
export const CONV_FORWARD_CASES: ConvCase[] = [
  { x: [1, 1, 1, 1], Cout: 1, K: 3 },
  { x: [2, 3, 7, 13], Cout: 5, K: 3, relu: true, quick: true },
  { x: [1, 5, 7, 13], Cout: 3, K: 1, bias: false, quick: true },
  { x: [2, 16, 9, 11], Cout: 16, K: 3, relu: true },
  { x: [1, 1, 6, 33], Cout: 16, K: 3 },
  { x: [1, 16, 5, 8], Cout: 1, K: 3, bias: false, relu: true, quick: true },
  { x: [1, 3, 7, 13], Cout: 5, K: 3, pad: 0, quick: true },
  { x: [1, 3, 6, 5], Cout: 2, K: 1, pad: 1 },
  { x: [2, 13, 7, 12], Cout: 17, K: 3, relu: true, quick: true, selftest: true }, // width 12: vec4 rows, packed weights
  { x: [1, 20, 5, 4], Cout: 8, K: 3, bias: false, quick: true },
  { x: [2, 5, 13, 17], Cout: 7, K: 3, relu: true, selftest: true },
  { x: [1, 16, 12, 20], Cout: 16, K: 3, selftest: true },
  { x: [1, 3, 9, 11], Cout: 5, K: 1, selftest: true },
  { x: [1, 32, 6, 9], Cout: 8, K: 3, relu: true, selftest: true },
  { x: [2, 3, 6, 7], Cout: 5, K: 3, E: 3, table: ROUTED_TABLE },
  { x: [2, 3, 6, 7], Cout: 5, K: 3, E: 3, table: ROUTED_TABLE, relu: true },
  { x: [2, 6, 8, 12], Cout: 5, K: 3, E: 4, table: TOP2_TABLE, relu: true, selftest: true },
  // Routed over input slabs (80 and 71 KiB samples): partial outputs added to the samples they reach, ReLU after the
  // last; some slabs reach no output of a group; 7 channels of 15×17 add one element per lane.
  { x: [2, 40, 16, 32], Cout: 8, K: 3, E: 3, table: [[1, 2], [0, 0], [1, 1]], relu: true, binding: 64 * KiB },
  { x: [2, 70, 15, 17], Cout: 7, K: 3, E: 3, table: [[1, 2], [0, 0], [1, 1]], relu: true, binding: 64 * KiB },
];

/** The direct kernels' gradients: channel counts beyond one block (13→17, 20→9), vec4 widths and not, routed. */
export const CONV_GRADIENT_CASES: ConvCase[] = [
  { x: [2, 13, 7, 11], Cout: 17, K: 3, grads: true, quick: true },
  { x: [2, 13, 5, 12], Cout: 17, K: 3, grads: true, quick: true },
  { x: [2, 6, 4, 8], Cout: 8, K: 3, E: 2, table: [[1, 1], [0, 0]], grads: true, quick: true },
  { x: [1, 20, 5, 9], Cout: 9, K: 1, grads: true, quick: true },
  { x: [2, 11, 6, 7], Cout: 17, K: 3, E: 3, table: ROUTED_TABLE, grads: true, quick: true },
  // 19 rows: the shared-row kernel's subgroups of 8 rows, their edges and a partial last one.
  { x: [1, 5, 19, 16], Cout: 8, K: 3, grads: true, quick: true },
  { x: [2, 6, 9, 12], Cout: 5, K: 3, grads: true, selftest: true },
  { x: [1, 16, 11, 16], Cout: 16, K: 3, grads: true, selftest: true },
  { x: [2, 3, 7, 5], Cout: 4, K: 1, grads: true, selftest: true },
  { x: [2, 6, 8, 12], Cout: 5, K: 3, E: 4, table: TOP2_TABLE, grads: true, selftest: true },
  // 64 KiB bindings: input slabs of 21 channels, output slabs on the packed weights' 16-channel blocks.
  { x: [2, 24, 24, 32], Cout: 24, K: 3, grads: true, binding: 64 * KiB, quick: true },
];

/** Winograd forced (3×3, padding 1): 1-pixel images and borders, sizes off the tile, channels not multiples of 4. */
export const WINOGRAD_CASES: ConvCase[] = [
  { x: [1, 1, 1, 1], Cout: 1, K: 3, grads: true },
  { x: [2, 3, 7, 13], Cout: 5, K: 3, relu: true },
  { x: [2, 3, 7, 13], Cout: 5, K: 3, grads: true },
  { x: [1, 5, 2, 9], Cout: 3, K: 3, bias: false },
  { x: [2, 16, 9, 11], Cout: 16, K: 3, relu: true },
  { x: [1, 13, 12, 12], Cout: 17, K: 3, bias: false, relu: true },
  { x: [1, 1, 6, 33], Cout: 16, K: 3 },
  { x: [1, 20, 25, 31], Cout: 40, K: 3, relu: true },
  { x: [3, 33, 13, 7], Cout: 9, K: 3 },
  { x: [2, 5, 7, 13], Cout: 7, K: 3, grads: true },
  { x: [1, 17, 12, 8], Cout: 33, K: 3, grads: true },
  { x: [1, 3, 1, 1], Cout: 1, K: 3, grads: true },
  { x: [1, 37, 25, 31], Cout: 33, K: 3, grads: true },
  { x: [3, 6, 14, 9], Cout: 19, K: 3, E: 3, table: SKIPPING_TABLE, relu: true, grads: true },
  { x: [3, 6, 14, 9], Cout: 19, K: 3, E: 3, table: SKIPPING_TABLE },
  { x: [2, 6, 14, 9], Cout: 19, K: 3, E: 3, table: ROUTED_TABLE, relu: true, grads: true, quick: true },
  { x: [2, 7, 13, 10], Cout: 19, K: 3, E: 3, table: ROUTED_TABLE, relu: true, grads: true, selftest: true },
  // 2 MiB bindings: input slabs of channels, output slabs of samples, the transformed tiles in several bands.
  { x: [2, 48, 120, 96], Cout: 24, K: 3, E: 2, table: [[1, 1], [0, 0], [1, 0]], relu: true, grads: true, binding: 2048 * KiB },
];

const describe = (c: ConvCase) =>
  `${c.table ? `routed E${c.E} ×${c.table.length} ` : ''}${c.x[0]}×${c.x[1]}→${c.Cout} ${c.x[2]}×${c.x[3]} k${c.K}${c.pad !== undefined ? ` p${c.pad}` : ''}${c.bias === false ? '' : ' bias'}${c.relu ? ' relu' : ''}${c.binding ? ` in ${c.binding / KiB} KiB bindings` : ''}`;

/** MoE-Fusion's 3×3 convolutions (input → output channels), each once. */
export const MOE_FUSION_CONVS: ReadonlyArray<readonly [number, number]> = [[1, 16], [16, 16], [32, 16], [48, 16], [16, 8], [8, 16], [160, 64], [64, 32], [16, 1]];

/**
 * The engine part: the case's convolution, and for the benchmark its inputs and cost. Working size: MoE-Fusion's
 * convolutions (+bias+ReLU) on one image, and its widest routed one with 2 of 4 experts (one sample, as the model).
 */
const convTiming: Timing<ConvCase> = {
  inputs: (c, rng) => {
    const E = c.E ?? 1;
    const w = Tensor.fromArray(rng.uniform(E * c.Cout * c.x[1] * c.K * c.K), c.table ? [E, c.Cout, c.x[1], c.K, c.K] : [c.Cout, c.x[1], c.K, c.K]);
    const b = Tensor.fromArray(rng.uniform(E * c.Cout), c.table ? [E, c.Cout] : [c.Cout]);
    return [Tensor.fromArray(rng.uniform(size(c.x)), [...c.x]), w, b, ...(c.table ? [tableTensor(c.table)] : [])];
  },
  run: (c, [x, w, b, table], variant) => convolve(c, x, w, c.bias === false ? null : b, table ?? null, !!c.relu, variant),
  cost: (c) => ({ unit: 'flop', amount: 2 * (c.table?.length ?? c.x[0]) * c.x[1] * c.Cout * c.K * c.K * c.x[2] * c.x[3] }),
  working: (w, h) => [
    ...MOE_FUSION_CONVS.map(([ci, co]): ConvCase => ({ x: [1, ci, h, w], Cout: co, K: 3, relu: true })),
    { x: [1, 160, h, w], Cout: 64, K: 3, E: 4, table: [[0, 2], [0, 0]], relu: true },
  ],
};

const tableTensor = (table: Table) => Tensor.fromArray(table.flat(), [table.length, 2], 'u32');

/** The case's convolution of x by w (+ b, + ReLU), routed by `table` when the case is routed. */
function convolve(c: ConvCase, x: Tensor, w: Tensor, b: Tensor | null, table: Tensor | null, relu: boolean, variant?: KernelVariant): Tensor {
  return table ? routedConv2d(x, w, b, table, { relu, variant }) : conv2d(x, w, b, { padding: c.pad, relu, variant });
}

/** Values the reference has at exactly zero (an input no sample read, an expert never chosen) must be exactly zero. */
function zerosKept(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): Comparison[] {
  const at: number[] = [];
  for (let i = 0; i < expected.length; i++) if (expected[i] === 0) at.push(i);
  return at.length ? [compareExact(`${what} zeros`, at.map((i) => actual[i]), at.map(() => 0))] : [];
}

async function runConv(c: ConvCase, rng: Rng, path: KernelPath): Promise<Comparison[]> {
  const [N, Cin, H, W] = c.x;
  const { Cout, K } = c;
  const E = c.E ?? 1;
  const table: Table = c.table ?? Array.from({ length: N }, (_, n) => [n, 0] as const);
  const wShape = c.table ? [E, Cout, Cin, K, K] : [Cout, Cin, K, K];
  const bShape = c.table ? [E, Cout] : [Cout];
  const x = rng.uniform(N * Cin * H * W);
  const w = rng.uniform(size(wShape));
  const b = c.bias === false ? null : rng.uniform(E * Cout);
  const r = c.grads ? rng.uniform(table.length * Cout * H * W) : null;
  const tol = toleranceOf(c, path, FORWARD_TOLERANCE);
  const gradTol = toleranceOf(c, path, GRADIENT_TOLERANCE);
  const run = (xt: Tensor, wt: Tensor, bt: Tensor | null, relu: boolean) => convolve(c, xt, wt, bt, c.table ? tableTensor(table) : null, relu, path.variant);
  const rt = engine().rt;
  if (c.binding) rt.bindingLimitForTests = c.binding;
  try {
    const want = refConv({ x, xShape: c.x, w, E, Cout, K, b, table, pad: c.pad ?? (K - 1) / 2, relu: !!c.relu });
    const out = noGrad(() => tidy(() => run(Tensor.fromArray(x, [...c.x]), Tensor.fromArray(w, wShape), b && Tensor.fromArray(b, bShape), !!c.relu)));
    const list = await compareTensor('output', out, want.shape, want.data, tol);
    out.dispose();
    if (!r) return list;
    // The gradients of Σ out·r, seeded with r (a sum would not fit a small binding limit either).
    const [xt, wt, bt] = [leaf(x, [...c.x]), leaf(w, wShape), b && leaf(b, bShape)];
    const y = tidy(() => run(xt, wt, bt, false));
    const seed = Tensor.fromArray(r, y.shape);
    backward(y, seed);
    const grads = refConvGrads(x, c.x, w, E, Cout, K, table, r);
    for (const [name, t, expected] of [['dx', xt, grads.dx], ['dw', wt, grads.dw], ['db', bt, grads.db]] as const) {
      if (!t) continue;
      const got = await gradOf(t);
      list.push(compareValues(name, got, expected, gradTol), ...zerosKept(name, got, expected));
    }
    for (const t of [y, seed, xt, wt, bt]) t?.dispose();
    return list;
  } finally {
    if (c.binding) rt.bindingLimitForTests = null;
  }
}

export const convForwardFamily = family('conv2d forward', 'conv', 102, CONV_FORWARD_CASES, describe, runConv, convTiming);
export const convGradientFamily = family('conv2d gradients', 'conv', 103, CONV_GRADIENT_CASES, describe, runConv);
export const winogradFamily = family('winograd convolution', 'winograd', 105, WINOGRAD_CASES, describe, runConv);
