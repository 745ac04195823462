/**
 * `moefusion bench`: the end-to-end benchmark of src/bench/e2e.ts (engine against the PyTorch reference, interleaved),
 * or with --kernels the engine's kernel benchmark (src/bench/kernels.ts).
 */
import { Command } from 'commander';
import { DEFAULT_BENCH, parseDims, runBenchmark } from '../bench/e2e.ts';
import { runKernelBenchmark } from '../bench/kernels.ts';
import { parseProviders } from '../bench/onnxruntime-peer.ts';
import { runConvTableBenchmark } from '../bench/conv-table.ts';
import { UsageError } from './errors.ts';
import { checkOutputs } from './outputs.ts';

/** Checks the options before anything runs (a malformed one is a usage error naming it), and the --out folder. */
function checkOptions(o: { sizes: string; train: string; runs: string; warmup: string; kernelSize: string; ort: string; out: string }): void {
  try {
    parseDims(o.kernelSize, 2, '--kernel-size');
    parseProviders(o.ort);
    for (const s of o.sizes.split(',').filter(Boolean)) parseDims(s, 2, '--sizes');
    for (const s of o.train.split(',').filter(Boolean)) parseDims(s, 3, '--train');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!/^[1-9]\d*$/.test(o.runs)) throw new UsageError(`--runs ${o.runs}: expected a positive integer`);
  if (!/^\d+$/.test(o.warmup)) throw new UsageError(`--warmup ${o.warmup}: expected a non-negative integer`);
  // The results are written after minutes of timing: their folder is checked now (created with the first file).
  checkOutputs([{ flag: '--out', path: o.out, kind: 'folder' }], []);
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('time inference and a training step on the engine and on PyTorch (same weights, same machine, taking turns)')
    .option('--sizes <list>', 'inference sizes WIDTHxHEIGHT, comma-separated', DEFAULT_BENCH.sizes)
    .option('--train <list>', 'training steps BATCHxWIDTHxHEIGHT, comma-separated ("" for none)', DEFAULT_BENCH.train)
    .option('--runs <n>', 'timed rounds per case', String(DEFAULT_BENCH.runs))
    .option('--warmup <n>', 'untimed rounds first', String(DEFAULT_BENCH.warmup))
    .option('--no-torch', 'skip the PyTorch reference')
    .option('--python <path>', 'Python with PyTorch for the reference', 'python3')
    .option('--ort <list>', 'also time inference on onnxruntime-node (dev dependency): cpu, webgpu, comma-separated', 'none')
    .option('--out <dir>', 'folder for results (JSON and chart)', DEFAULT_BENCH.out)
    .option('--kernels', "instead: time the engine's kernels (matmul, every convolution, gradients, gates, attention, …) and measure the convolution algorithm table (conv-table-*.json, for MOEFUSION_CONV_TABLE)")
    .option('--kernel-size <WxH>', 'working size of the kernel benchmark', '160x120')
    .action(async (o: { sizes: string; train: string; runs: string; warmup: string; torch: boolean; python: string; out: string; kernels?: boolean; kernelSize: string; ort: string }) => {
      checkOptions(o);
      if (o.kernels) {
        const [width, height] = parseDims(o.kernelSize, 2, '--kernel-size');
        await runKernelBenchmark({ width, height, runs: Number(o.runs), out: o.out });
        await runConvTableBenchmark({ width, height, runs: Number(o.runs), out: o.out });
        return;
      }
      await runBenchmark({ ...o, runs: Number(o.runs), warmup: Number(o.warmup), ort: parseProviders(o.ort) });
    });
}
