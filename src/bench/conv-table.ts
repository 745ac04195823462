/**
 * Measures the table that picks the convolution algorithm per shape (src/kernels/conv2d-choice.ts) on the current
 * adapter: every 3×3 convolution of MoE-Fusion (the encoders' plain ones, the experts' routed ones: two experts of
 * one sample), forward, input gradient and weight gradient, with the direct kernel and Winograd F(4×4), F(6×6)
 * taking turns round by round. An algorithm replaces the direct kernel where the median of its per-round speed-ups is
 * above 1.05. `moefusion bench --kernels` writes the result as conv-table-<adapter>-<date>.json, which
 * MOEFUSION_CONV_TABLE=<file> makes the engine use.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { engine, noGrad } from '../tensor/engine.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { Tensor } from '../tensor/tensor.ts';
import { conv2dInputGradKernel, conv2dKernel } from '../kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../kernels/conv2d-grad.ts';
import { engineVariant, type KernelVariant } from '../kernels/variant.ts';
import { type ConvAlgorithm, type ConvPass, type ConvTable, type ConvTableEntry } from '../kernels/conv2d-choice.ts';
import { median, randomData } from './kernels.ts';

/** MoE-Fusion's 3×3 convolutions: input and output channels, and whether routed (two experts of one sample). */
const SHAPES: Array<[number, number, boolean]> = [
  [1, 16, false], [16, 16, false], [32, 16, false], [48, 16, false],
  [16, 8, true], [8, 16, true], [160, 64, true], [64, 32, true], [32, 16, true], [16, 1, true],
];
const ALGORITHMS: ConvAlgorithm[] = ['direct', 'winograd4', 'winograd6'];
/** A Winograd algorithm must beat the direct kernel by this much to be chosen. */
const MARGIN = 1.05;

const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);

/** Times one pass of one shape with each algorithm, `runs` rounds after a warm-up; returns the table entry. */
async function measure(ci: number, co: number, routed: boolean, pass: ConvPass, width: number, height: number, runs: number): Promise<ConvTableEntry> {
  const rt = engine().rt;
  const E = routed ? 4 : 1;
  const nv = routed ? 2 : 1;
  const x = random([1, ci, height, width], 1);
  const gy = random([nv, co, height, width], 2);
  const w = random([E, co, ci, 3, 3], 3);
  const b = random([E, co], 4);
  const table = routed ? Tensor.fromArray([0, 2, 0, 1], [2, 2], 'u32') : null;
  const run = (variant: KernelVariant) =>
    noGrad(() => {
      if (pass === 'input') return [conv2dInputGradKernel(gy, w, table, 1, 1, variant)];
      if (pass === 'weight') return Object.values(conv2dWeightGradKernel(x, gy, table, E, 3, 1, variant));
      return [conv2dKernel({ x, w, bias: b, table, pad: 1, relu: true, variant })];
    });
  const times = ALGORITHMS.map(() => [] as number[]);
  try {
    for (let round = -1; round < runs; round++)
      for (const [k, algorithm] of ALGORITHMS.entries()) {
        await rt.sync();
        const t0 = performance.now();
        const outs = run({ ...engineVariant(), conv: algorithm });
        await rt.sync();
        if (round >= 0) times[k].push(performance.now() - t0);
        for (const t of outs) t.dispose();
      }
  } finally {
    for (const t of [x, gy, w, b, table]) t?.dispose();
  }
  const speedups = ALGORITHMS.map((_, k) => median(times[k].map((v, i) => times[0][i] / v)));
  const best = speedups.indexOf(Math.max(...speedups));
  const pixels = (pass === 'input' ? 1 : nv) * width * height;
  return speedups[best] > MARGIN
    ? { ci, co, pixels, pass, algorithm: ALGORITHMS[best], speedup: speedups[best] }
    : { ci, co, pixels, pass, algorithm: 'direct', speedup: 1 };
}

/** The table of this adapter at width×height; `log` gets one line per entry. */
export async function measureConvTable(adapter: string, width: number, height: number, runs: number, log: (line: string) => void): Promise<ConvTable> {
  const entries: ConvTableEntry[] = [];
  for (const [ci, co, routed] of SHAPES)
    for (const pass of ['forward', 'input', 'weight'] as const) {
      const e = await measure(ci, co, routed, pass, width, height, runs);
      entries.push(e);
      log(`conv ${ci}→${co}${routed ? ' routed' : ''} ${pass}: ${e.algorithm}${e.algorithm === 'direct' ? '' : ` (${e.speedup.toFixed(2)}× faster)`}`);
    }
  return { adapter, date: new Date().toISOString().slice(0, 10), entries };
}

/** Measures the table at width×height and writes it into `out` as conv-table-<adapter>-<date>.json; returns the path. */
export async function runConvTableBenchmark(o: { width: number; height: number; runs: number; out: string }, log: (line: string) => void = console.log): Promise<string> {
  const s = engine().rt.handle.summary;
  const adapter = `${s.vendor} ${s.device || s.description}`.trim();
  log(`\nconvolution algorithms at ${o.width}×${o.height} (direct, Winograd F(4×4), F(6×6), taking turns; ${o.runs} rounds):`);
  const table = await measureConvTable(adapter, o.width, o.height, o.runs, log);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, `conv-table-${slug}-${table.date}.json`);
  await writeFileAtomic(file, JSON.stringify(table, null, 2));
  log(`wrote ${file} (use it: MOEFUSION_CONV_TABLE=${file})`);
  return file;
}
