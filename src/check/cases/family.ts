/**
 * A kernel family of the case catalogue (src/check/cases/<kernel>.ts): its cases (one line each: shapes, options,
 * tolerance, and where it runs), the paths they run under, and ONE runner that computes a case on the engine and in
 * float64 (src/check/reference/) and returns the comparisons. The Node tests run every case on every path, the
 * browser page the `quick` ones, `moefusion selftest` the `selftest` ones on the engine's own path, and the kernel
 * benchmark (`moefusion bench --kernels`) times the `bench` ones with the family's engine part (its Timing).
 */
import { Tensor } from '../../tensor/tensor.ts';
import { noGrad } from '../../tensor/engine.ts';
import { Rng } from '../../util/rng.ts';
import type { KernelVariant } from '../../kernels/variant.ts';
import { compareExact, compareValues, type Comparison } from '../compare.ts';
import { size } from '../reference/elementwise.ts';
import { kernelPaths, type KernelPath, type PathSet } from '../paths.ts';

/**
 * Relative errors allowed (max|a−e| / max|e|): float32 sums of at most a few thousand terms stay near 1e-6;
 * a broken kernel is off by far more.
 */
export const FORWARD_TOLERANCE = 2e-5;
export const GRADIENT_TOLERANCE = 1e-4;
/**
 * The Winograd convolution, F(4×4) and F(6×6): its transforms' constants (up to 21/4 and 1/90 for F(6×6)) round in
 * float32 too; measured worst 6e-6 and 1e-5 with up to 160 input channels.
 */
export const WINOGRAD_TOLERANCE: Record<number, number> = { 4: 2e-5, 6: 6e-5 };

/** Where a case runs besides the Node tests (which run every case). */
export interface CaseFlags {
  /** In the browser page's subset (test/browser/kernels.ts). */
  quick?: boolean;
  /** In `moefusion selftest` (short enough for any adapter). */
  selftest?: boolean;
  /** Relative error allowed, instead of the runner's default. */
  tol?: number;
  /**
   * Timed by the kernel benchmark too; 'only': by it alone, a shape at working size whose float64 reference would
   * be too slow for the tests, the browser and selftest (which skip it).
   */
  bench?: boolean | 'only';
}

/** One case, ready to run: its description, flags, and its run on a path (its variant passed to the kernels). */
export interface KernelCase extends CaseFlags {
  what: string;
  run(rng: Rng, path: KernelPath): Promise<Comparison[]>;
}

export interface KernelFamily {
  /** The check's name in `moefusion selftest` (and its --only). */
  name: string;
  paths: PathSet;
  /** Seed of the generators the cases draw their data from (see runCases). */
  seed: number;
  cases: KernelCase[];
  /** The cases the kernel benchmark times at its working size width × height (none without a Timing). */
  timed(width: number, height: number): TimedCase[];
}

/** What a run of a case costs: floating-point operations, or the bytes it must read and write at least. */
export interface Cost {
  unit: 'flop' | 'byte';
  amount: number;
}

/** The engine part of a family's runner, which the kernel benchmark times without the float64 reference. */
export interface Timing<C> {
  /** Inputs of the case on the engine, drawn from rng. */
  inputs(c: C, rng: Rng): Tensor[];
  /** The case's computation on the engine (the runner's forward; the benchmark runs it without gradients), its outputs. */
  run(c: C, inputs: Tensor[], variant?: KernelVariant): Tensor | Tensor[];
  cost(c: C): Cost;
  /** Lines at the benchmark's working size (image width × height): benchmark only, like `bench: 'only'`. */
  working?(width: number, height: number): C[];
}

/** A case the benchmark times: `prepare` allocates its inputs; `run` records one computation, `dispose` frees the inputs. */
export interface TimedCase extends Cost {
  what: string;
  prepare(): { run(): Tensor[]; dispose(): void };
}

/** A family from its cases, their description, its runner and, for the benchmark, its engine part. */
export function family<C extends CaseFlags>(name: string, paths: PathSet, seed: number, cases: readonly C[], describe: (c: C) => string, run: (c: C, rng: Rng, path: KernelPath) => Promise<Comparison[]>, timing?: Timing<C>): KernelFamily {
  const timedCase = (c: C, i: number): TimedCase => ({
    what: `${name}: ${describe(c)}`,
    ...timing!.cost(c),
    prepare() {
      const inputs = timing!.inputs(c, new Rng(seed * 1000 + i));
      return { run: () => noGrad(() => [timing!.run(c, inputs)].flat()), dispose: () => inputs.forEach((t) => t.dispose()) };
    },
  });
  return {
    name,
    paths,
    seed,
    cases: cases.map((c) => ({ quick: c.quick, selftest: c.selftest, tol: c.tol, bench: c.bench, what: describe(c), run: (rng, path) => run(c, rng, path) })),
    timed: (width, height) => (timing ? [...cases.filter((c) => c.bench), ...(timing.working?.(width, height) ?? [])].map(timedCase) : []),
  };
}

export type Pick = 'all' | 'quick' | 'selftest';
/** The benchmark's own cases ('only') run nowhere else. */
const picked = (c: KernelCase, pick: Pick) => c.bench !== 'only' && (pick === 'all' || (pick === 'quick' ? c.quick : c.selftest));

/**
 * Runs the picked cases on a path, each comparison named by its case and path; `each` sees every case's
 * comparisons as it ends. Case i draws its data from its own generator (seed·1000 + i): the same on every path,
 * whichever cases run before it.
 */
export async function runCases(f: KernelFamily, path: KernelPath, pick: Pick = 'all', each?: (c: KernelCase, list: Comparison[]) => void): Promise<Comparison[]> {
  const list: Comparison[] = [];
  for (const [i, c] of f.cases.entries()) {
    if (!picked(c, pick)) continue;
    const found = (await c.run(new Rng(f.seed * 1000 + i), path)).map((r) => ({ ...r, what: `${c.what} (${path.name}): ${r.what}` }));
    each?.(c, found);
    list.push(...found);
  }
  return list;
}

/** Runs the picked cases on every path of the family (`every` false: the engine's own path, as selftest). */
export async function runFamily(f: KernelFamily, pick: Pick = 'all', every = true, each?: (c: KernelCase, list: Comparison[]) => void): Promise<Comparison[]> {
  const list: Comparison[] = [];
  for (const path of kernelPaths(f.paths, every)) list.push(...(await runCases(f, path, pick, each)));
  return list;
}

/** What the runners share. */
export { size };

/** A tensor from data that records gradients. */
export function leaf(data: Float32Array, shape: number[]): Tensor {
  const t = Tensor.fromArray(data, shape);
  t.requiresGrad = true;
  return t;
}

/** A gradient's values (zeros when none reached the tensor). */
export async function gradOf(t: Tensor): Promise<Float32Array> {
  return t.grad ? t.grad.data() : new Float32Array(t.size);
}

/** A tensor's values against a float64 reference (see compareValues), after its shape. */
export async function compareTensor(what: string, t: Tensor, shape: readonly number[], expected: ArrayLike<number>, tol: number, floor?: number): Promise<Comparison[]> {
  return [compareExact(`${what} shape`, t.shape, shape), compareValues(what, await t.data(), expected, tol, floor)];
}

/** The tolerance of a case on a path: its own, else the Winograd tile's when forced, else `fallback`. */
export const toleranceOf = (c: CaseFlags, path: KernelPath, fallback: number) => c.tol ?? (path.tile ? WINOGRAD_TOLERANCE[path.tile] : fallback);
