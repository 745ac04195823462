/**
 * The engine's kernel benchmark without peers (`moefusion bench --kernels`, and the engine side of bench/kernels.ts):
 * a 1024³ matmul, every 3×3 convolution of MoE-Fusion (+bias+ReLU), and the engine's other kernels at MoE-Fusion's
 * shapes: gradients of the convolution, the routed (expert) convolution, gating, combine, resize, attention,
 * losses, reductions and Adam. Wall time until the GPU is done, median of `runs` after one warm-up; GFLOP/s for the
 * compute-bound kernels, GB/s (the bytes a kernel must read and write at least) for the memory-bound ones. Writes
 * kernels-engine-<adapter>-<date>.json and a chart of the compute-bound rates.
 */
import { writeFileAtomic } from '../io/atomic.ts';
import { join } from 'node:path';
import { engine, initEngine, noGrad } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { conv2d, matmul } from '../ops/index.ts';
import { conv2dInputGradKernel } from '../kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../kernels/conv2d-grad.ts';
import { attentionKernel, attentionGradKernel } from '../kernels/attention.ts';
import { adamKernel } from '../kernels/optimizer.ts';
import { routedConv2d, noisyTopKGate, routingTable, combineExperts, resizeBilinear, softmax, sum, add } from '../ops/index.ts';
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

export interface EngineCase {
  name: string;
  /** What `amount` counts: floating-point operations or bytes moved. */
  unit: 'flop' | 'byte';
  amount: number;
  /** Allocates the inputs and returns the timed run (outputs disposed after each run, inputs by `dispose`). */
  prepare(): Timed;
}

const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);
const positive = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed).map(Math.abs), shape);

/** Prepares inputs and a run that works without recording gradients. */
function engineCase(name: string, unit: EngineCase['unit'], amount: number, inputs: () => Tensor[], run: (xs: Tensor[]) => Tensor | Tensor[]): EngineCase {
  return {
    name,
    unit,
    amount,
    prepare() {
      const xs = inputs();
      return timed(() => noGrad(() => run(xs)), xs);
    },
  };
}

/** The cases at working size width×height, batch 1 (the gates at their fixed 640×480 grids, as the model). */
export function engineCases(width: number, height: number): EngineCase[] {
  const [H, W] = [height, width];
  const px = H * W;
  const conv = (cin: number, cout: number) => 2 * cin * cout * 9 * px;
  const MB = 4; // bytes per float
  const L = 1024;
  const heads = 4;
  const D = 32;
  const gateInputs = 160 * 60 * 80; // the global gate's grid
  const params = 8_495_722; // MoE-Fusion's parameter count
  return [
    engineCase('conv3x3 160→64 input gradient', 'flop', conv(160, 64), () => [random([1, 64, H, W], 1), random([1, 64, 160, 3, 3], 2)], ([gy, w]) =>
      conv2dInputGradKernel(gy, w, null, 1, 1)),
    engineCase('conv3x3 160→64 weight gradient', 'flop', conv(160, 64), () => [random([1, 160, H, W], 1), random([1, 64, H, W], 2)], ([x, gy]) => {
      const { dw, db } = conv2dWeightGradKernel(x, gy, null, 1, 3, 1);
      return [dw, db];
    }),
    engineCase('routed conv 160→64, top-2 of 4 experts', 'flop', 2 * conv(160, 64), () => [random([1, 160, H, W], 1), random([4, 64, 160, 3, 3], 2), random([4, 64], 3), Tensor.fromArray([2, 0], [1, 2], 'u32')], ([x, w, b, top]) => {
      const table = routingTable(top, 4);
      return [routedConv2d(x, w, b, table, { relu: true }), table];
    }),
    engineCase('resize 160 channels to the gate grid 80×60', 'byte', MB * 160 * (px + 80 * 60), () => [random([1, 160, H, W], 1)], ([x]) => resizeBilinear(x, 60, 80)),
    engineCase('noisy top-2 gate, 768 000 inputs → 4 experts (training)', 'byte', MB * 2 * gateInputs * 4 + MB * gateInputs, () => [random([1, gateInputs], 1), random([gateInputs, 4], 2), random([gateInputs, 4], 3), random([1, 4], 4)], ([x, wg, wn, noise]) => {
      const r = noisyTopKGate(x, wg, wn, { k: 2, train: true, lossCoef: 0.02, noise });
      return [r.gates, r.topIndices, r.load, r.importance, r.auxLoss];
    }),
    engineCase('log-sum-exp combine of 2 experts', 'byte', MB * 3 * px, () => [random([2, 1, H, W], 1), positive([1, 4], 2), Tensor.fromArray([2, 0], [1, 2], 'u32')], ([y, g, top]) =>
      combineExperts(y, g, top)),
    engineCase('attention forward (1×4 heads×1024×32)', 'flop', 4 * heads * L * L * D, () => [random([1, heads, L, D], 1), random([1, heads, L, D], 2), random([1, heads, L, D], 3)], ([q, k, v]) => {
      const { out, lse } = attentionKernel(q, k, v);
      return [out, lse];
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
    engineCase('sum, 160 channels', 'byte', MB * 160 * px, () => [random([1, 160, H, W], 1)], ([x]) => sum(x)),
    engineCase('softmax, 1024 rows of 1024', 'byte', MB * 2 * L * L, () => [random([L, L], 1)], ([x]) => softmax(x)),
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
function detectionCase(W: number, H: number): EngineCase {
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

/** MoE-Fusion's 3×3 convolutions (input → output channels). */
export const MOE_FUSION_CONVS: Array<[number, number]> = [[1, 16], [16, 16], [32, 16], [48, 16], [16, 8], [8, 16], [160, 64], [64, 32], [32, 16], [16, 1]];
export const MATMUL_SIZE = 1024;

/** The matmul and the convolutions (+bias+ReLU) at width×height, batch `batch`, on the engine alone. */
export function convCases(width: number, height: number, batch = 1): EngineCase[] {
  const M = MATMUL_SIZE;
  const list: EngineCase[] = [
    engineCase(`matmul ${M}³`, 'flop', 2 * M ** 3, () => [Tensor.fromArray(randomData(M * M, 4), [M, M]), Tensor.fromArray(randomData(M * M, 5), [M, M])], ([a, b]) => matmul(a, b)),
  ];
  const seen = new Set<string>();
  for (const [cin, cout] of MOE_FUSION_CONVS) {
    if (seen.has(`${cin}-${cout}`)) continue;
    seen.add(`${cin}-${cout}`);
    const [n, h, w] = [batch, height, width];
    list.push(
      engineCase(`conv3x3 ${cin}→${cout}`, 'flop', 2 * n * cin * cout * 9 * h * w, () => [
        Tensor.fromArray(randomData(n * cin * h * w, 1), [n, cin, h, w]),
        Tensor.fromArray(randomData(cout * cin * 9, 2), [cout, cin, 3, 3]),
        Tensor.fromArray(randomData(cout, 3), [cout]),
      ], ([x, wt, b]) => conv2d(x, wt, b, { relu: true })),
    );
  }
  return list;
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
  for (const c of [...convCases(o.width, o.height), ...engineCases(o.width, o.height)]) {
    const t = c.prepare();
    const times: number[] = [];
    try {
      for (let i = -1; i < o.runs; i++) {
        const ms = await t.once();
        if (i >= 0) times.push(ms);
      }
    } finally {
      await t.dispose();
    }
    const ms = median(times);
    const rate = c.amount / ms / 1e6;
    if (Number.isNaN(matmulRate)) matmulRate = rate;
    const r: KernelResult = c.unit === 'flop' ? { name: c.name, ms, gflops: rate, shareOfMatmul: rate / matmulRate } : { name: c.name, ms, gbPerS: rate };
    results.push(r);
    log(`${c.name.padEnd(58)} ${ms.toFixed(2).padStart(9)} ms  ${c.unit === 'flop' ? `${rate.toFixed(1)} GFLOP/s` : `${rate.toFixed(2)} GB/s`}`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const file = join(o.out, `kernels-engine-${slug}-${date}.json`);
  await writeFileAtomic(file, JSON.stringify({ adapter, software: s.isSoftware, date, size: [o.width, o.height], runs: o.runs, matmulGflops: matmulRate, results }, null, 2));
  const compute = results.filter((r) => r.gflops !== undefined);
  const short = (name: string) =>
    name.startsWith('matmul') ? 'matmul' : name.endsWith('input gradient') ? 'dX' : name.endsWith('weight gradient') ? 'dW' : name.startsWith('routed') ? 'routed' : name.startsWith('attention forward') ? 'attn' : name.startsWith('attention backward') ? 'attn bw' : name.replace('conv3x3 ', '');
  const chart = barChartSvg(compute.map((r) => ({ label: short(r.name), values: [r.gflops!] })), [`engine (${adapter})`], {
    title: `MoE-Fusion kernels at ${o.width}×${o.height}, ${date}`,
    yLabel: 'GFLOP/s (higher is faster)',
  });
  await writeSvgImage(join(o.out, `kernels-engine-${slug}-${date}.png`), chart);
  log(`wrote ${file}`);
  return file;
}
