/** `moefusion bench`: the end-to-end benchmark of bench/run.ts (engine against the PyTorch reference). */
import { Command } from 'commander';
import { DEFAULT_BENCH, runBenchmark } from '../../bench/run.ts';

export function benchCommand(): Command {
  return new Command('bench')
    .description('time inference and a training step on the engine and on PyTorch (same weights, same machine)')
    .option('--sizes <list>', 'inference sizes WIDTHxHEIGHT, comma-separated', DEFAULT_BENCH.sizes)
    .option('--train <list>', 'training steps BATCHxHEIGHTxWIDTH, comma-separated ("" for none)', DEFAULT_BENCH.train)
    .option('--runs <n>', 'timed runs per case', String(DEFAULT_BENCH.runs))
    .option('--warmup <n>', 'untimed runs first', String(DEFAULT_BENCH.warmup))
    .option('--no-torch', 'skip the PyTorch reference')
    .option('--out <dir>', 'folder for results (JSON and chart)', DEFAULT_BENCH.out)
    .action(async (o: { sizes: string; train: string; runs: string; warmup: string; torch: boolean; out: string }) => {
      await runBenchmark({ ...o, runs: Number(o.runs), warmup: Number(o.warmup) });
    });
}
