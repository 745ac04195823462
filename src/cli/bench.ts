/** `moefusion bench`: the end-to-end benchmark of src/bench/e2e.ts (engine against the PyTorch reference, interleaved). */
import { Command } from 'commander';
import { DEFAULT_BENCH, runBenchmark } from '../bench/e2e.ts';

export function benchCommand(): Command {
  return new Command('bench')
    .description('time inference and a training step on the engine and on PyTorch (same weights, same machine, taking turns)')
    .option('--sizes <list>', 'inference sizes WIDTHxHEIGHT, comma-separated', DEFAULT_BENCH.sizes)
    .option('--train <list>', 'training steps BATCHxWIDTHxHEIGHT, comma-separated ("" for none)', DEFAULT_BENCH.train)
    .option('--runs <n>', 'timed rounds per case', String(DEFAULT_BENCH.runs))
    .option('--warmup <n>', 'untimed rounds first', String(DEFAULT_BENCH.warmup))
    .option('--no-torch', 'skip the PyTorch reference')
    .option('--python <path>', 'Python with PyTorch for the reference', 'python3')
    .option('--out <dir>', 'folder for results (JSON and chart)', DEFAULT_BENCH.out)
    .action(async (o: { sizes: string; train: string; runs: string; warmup: string; torch: boolean; python: string; out: string }) => {
      await runBenchmark({ ...o, runs: Number(o.runs), warmup: Number(o.warmup) });
    });
}
