/**
 * The engine's kernel benchmark without peers (`moefusion bench --kernels`, and the engine side of bench/kernels.ts):
 * the kernel catalogue's timed cases (src/check/cases/: lines marked `bench`, and each family's lines at the working
 * size: a 1024³ matmul, every 3×3 convolution of MoE-Fusion (+bias+ReLU), the routed convolution, gating, combine,
 * resize, attention, softmax, sums), then the kernels no catalogue case times (below: the convolution's and
 * attention's gradients, losses, batch norm, detection decoding, Adam). Wall time until the GPU is done, median of
 * `runs` after one warm-up; GFLOP/s for the compute-bound kernels, GB/s (the bytes a kernel must read and write at
 * least) for the memory-bound ones. Writes kernels-engine-<adapter>-<date>.json and a chart of the compute-bound rates.
 */
import { writeFileAtomic } from '../io/atomic.ts';
import { join } from 'node:path';
import { engine, initEngine, noGrad } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { conv2dInputGradKernel } from '../kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../kernels/conv2d-grad.ts';
import { attentionKernel, attentionGradKernel } from '../kernels/attention.ts';
import { adamKernel } from '../kernels/optimizer.ts';
import { add } from '../ops/index.ts';
import { KERNEL_FAMILIES } from '../check/kernels.ts';
import type { TimedCase } from '../check/cases/family.ts';
import { batchNorm2d } from '../ops/batch-norm.ts';
import { gradientLoss } from '../model/losses.ts';
import { recordDecode } from '../model/detector/decode.ts';
import { barChartSvg, writeSvgImage } from '../io/charts.ts';

/**
 * One prepared benchmark case: each call of `once` runs it once and returns its wall milliseconds; `output` runs it
 * and reads the result back (any layout), to check that every peer computed the same thing.
 */
export interface Timed {
  once(): Promise<number>;
  output(): Promise<ArrayLike<number>>;
  dispose(): Promise<void>;
}

/** Deterministic pseudo-random values in [-1, 1). */
export function randomData(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Times `run` (its outputs disposed after each run) as wall time from recording until the GPU is done; `output`
 * reads its first output back. Disposes `inputs` at the end.
 */
export function timed(run: () => Tensor | Tensor[], inputs: Tensor[]): Timed {
  const rt = engine().rt;
  const outputs = () => [run()].flat();
  return {
    async once() {
      await rt.sync();
      const t0 = performance.now();
      const outs = outputs();
      await rt.sync();
      const ms = performance.now() - t0;
      outs.forEach((t) => t.dispose());
      return ms;
    },
    async output() {
      const outs = outputs();
      const data = await outs[0].data();
      outs.forEach((t) => t.dispose());
      return data;
    },
    async dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}

const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);
const positive = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed).map(Math.abs), shape);

/** A case of the list below: its inputs, and a run that works without recording gradients. */
function engineCase(what: string, unit: TimedCase['unit'], amount: number, inputs: () => Tensor[], run: (xs: Tensor[]) => Tensor | Tensor[]): TimedCase {
  return {
    what,
    unit,
    amount,
    prepare() {
      const xs = inputs();
      return { run: () => noGrad(() => [run(xs)].flat()), dispose: () => xs.forEach((t) => t.dispose()) };
    },
  };
}

/** Every case at working size width×height, batch 1: the catalogue's (the matmul first: its rate is the reference), then the list below. */
export function benchCases(width: number, height: number): TimedCase[] {
  return [...KERNEL_FAMILIES.flatMap((f) => f.timed(width, height)), ...engineCases(width, height)];
}

/** Median wall milliseconds of `runs` runs of a case after one warm-up. */
export async function timeCase(c: TimedCase, runs: number): Promise<number> {
  const p = c.prepare();
  const t = timed(p.run, []);
  const times: number[] = [];
  try {
    for (let i = -1; i < runs; i++) {
      const ms = await t.once();
      if (i >= 0) times.push(ms);
    }
  } finally {
    p.dispose();
  }
  return median(times);
}

/** The kernels no catalogue case times, at working size width×height, batch 1. */
export function engineCases(width: number, height: number): TimedCase[] {
  const [H, W] = [height, width];
  const px = H * W;
  const conv = (cin: number, cout: number) => 2 * cin * cout * 9 * px;
  const MB = 4; // bytes per float
  const L = 1024;
  const heads = 4;
  const D = 32;
  const params = 8_495_722; // MoE-Fusion's parameter count
  return [
    engineCase('conv3x3 160→64 input gradient', 'flop', conv(160, 64), () => [random([1, 64, H, W], 1), random([1, 64, 160, 3, 3], 2)], ([gy, w]) =>
      conv2dInputGradKernel(gy, w, null, 1, 1)),
    engineCase('conv3x3 160→64 weight gradient', 'flop', conv(160, 64), () => [random([1, 160, H, W], 1), random([1, 64, H, W], 2)], ([x, gy]) => {
      const { dw, db } = conv2dWeightGradKernel(x, gy, null, 1, 3, 1);
      return [dw, db];
    }),
    engineCase('attention backward (1×4 heads×1024×32)', 'flop', 10 * heads * L * L * D, () => {
      const [q, k, v] = [random([1, heads, L, D], 1), random([1, heads, L, D], 2), random([1, heads, L, D], 3)];
      const { out, lse } = attentionKernel(q, k, v);
      return [q, k, v, out, lse, random([1, heads, L, D], 4)];
    }, ([q, k, v, out, lse, g]) => {
      const { dq, dk, dv } = attentionGradKernel(q, k, v, out, lse, g);
      return [dq, dk, dv];
    }),
    engineCase('gradient loss (3 Sobel, max, L1)', 'byte', MB * 3 * px, () => [random([1, 1, H, W], 1), random([1, 1, H, W], 2), random([1, 1, H, W], 3)], ([f, v, i]) =>
      gradientLoss(f, v, i)),
    engineCase('batch norm 64 channels (training: statistics, apply)', 'byte', MB * 3 * 64 * px, () => [random([1, 64, H, W], 1), random([64], 2), random([64], 3), Tensor.zeros([64]), positive([64], 4)], ([x, gamma, beta, mean, variance]) =>
      batchNorm2d(x, gamma, beta, { mean, var: variance }, { training: true })),
    detectionCase(W, H),
    engineCase('add, 160 channels', 'byte', MB * 3 * 160 * px, () => [random([1, 160, H, W], 1), random([1, 160, H, W], 2)], ([a, b]) => add(a, b)),
    engineCase('Adam step, 8.5 M parameters', 'byte', MB * 7 * params, () => [random([params], 1), random([params], 2), Tensor.zeros([params]), Tensor.zeros([params])], ([p, g, m, v]) => {
      adamKernel(p, g, m, v, { beta1: 0.9, beta2: 0.999, oneMinusBeta1: 0.1, oneMinusBeta2: 0.001, eps: 1e-8, coupledDecay: 0, paramDecay: 1, stepSize: 1e-3, bc2Sqrt: 0.0316 });
      return [];
    }),
  ];
}

/**
 * The detector's decoding kernels (`recordDecode`): peaks of 6 classes at strides 8 and 16 (two passes over the head),
 * the candidate cut-off and class-wise NMS of up to 1024 candidates into 100 boxes. The amount is the head's bytes
 * read twice.
 */
function detectionCase(W: number, H: number): TimedCase {
  const classes = 6;
  const levels = [8, 16].map((stride) => ({ stride, h: Math.ceil(H / stride), w: Math.ceil(W / stride) }));
  const cells = levels.reduce((a, l) => a + (classes + 4) * l.h * l.w, 0);
  return engineCase('detection decode: peaks and NMS, 6 classes, strides 8 and 16', 'byte', 4 * 2 * cells, () =>
    levels.flatMap((l, i) => [random([1, classes, l.h, l.w], 1 + i), random([1, 2, l.h, l.w], 3 + i), random([1, 2, l.h, l.w], 5 + i)]), (xs) => {
    const head = levels.map((l, i) => ({ heat: xs[3 * i], size: xs[3 * i + 1], offset: xs[3 * i + 2], stride: l.stride }));
    const { out, work } = recordDecode(head, { imageWidth: W, imageHeight: H, logitThreshold: 0, capacity: 1024 }, 1, 100, 0.5);
    return [out, ...work];
  });
}

export interface KernelResult {
  name: string;
  ms: number;
  gflops?: number;
  gbPerS?: number;
  /** GFLOP/s as a share of the matmul's. */
  shareOfMatmul?: number;
}

export interface KernelBenchOptions {
  width: number;
  height: number;
  runs: number;
  /** Folder for the JSON results and the chart. */
  out: string;
}

/** Runs every case, prints a table, writes the JSON and the chart; returns the JSON's path. */
export async function runKernelBenchmark(o: KernelBenchOptions, log: (line: string) => void = console.log): Promise<string> {
  const { rt } = await initEngine();
  const s = rt.handle.summary;
  const adapter = `${s.vendor} ${s.device || s.description}`.trim();
  log(`adapter: ${adapter} (${s.isSoftware ? 'software' : 'hardware'}); working size ${o.width}×${o.height}; median of ${o.runs} runs after one warm-up`);
  const results: KernelResult[] = [];
  let matmulRate = NaN;
  for (const c of benchCases(o.width, o.height)) {
    const ms = await timeCase(c, o.runs);
    const rate = c.amount / ms / 1e6;
    if (Number.isNaN(matmulRate)) matmulRate = rate;
    const r: KernelResult = c.unit === 'flop' ? { name: c.what, ms, gflops: rate, shareOfMatmul: rate / matmulRate } : { name: c.what, ms, gbPerS: rate };
    results.push(r);
    log(`${c.what.padEnd(58)} ${ms.toFixed(2).padStart(9)} ms  ${c.unit === 'flop' ? `${rate.toFixed(1)} GFLOP/s` : `${rate.toFixed(2)} GB/s`}`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const file = join(o.out, `kernels-engine-${slug}-${date}.json`);
  await writeFileAtomic(file, JSON.stringify({ adapter, software: s.isSoftware, date, size: [o.width, o.height], runs: o.runs, matmulGflops: matmulRate, results }, null, 2));
  const compute = results.filter((r) => r.gflops !== undefined);
  const short = (name: string) =>
    name.startsWith('matmul') ? 'matmul' : name.endsWith('input gradient') ? 'dX' : name.endsWith('weight gradient') ? 'dW' : name.includes('routed') ? 'routed' : name.startsWith('attention backward') ? 'attn bw' : name.startsWith('attention') ? 'attn' : (/\d+→\d+/.exec(name)?.[0] ?? name);
  const chart = barChartSvg(compute.map((r) => ({ label: short(r.name), values: [r.gflops!] })), [`engine (${adapter})`], {
    title: `MoE-Fusion kernels at ${o.width}×${o.height}, ${date}`,
    yLabel: 'GFLOP/s (higher is faster)',
  });
  await writeSvgImage(join(o.out, `kernels-engine-${slug}-${date}.png`), chart);
  log(`wrote ${file}`);
  return file;
}
