/**
 * `npm run bench`: the end-to-end benchmark of src/bench/e2e.ts (engine against the PyTorch reference, NCHW and
 * channels_last, and, for inference, onnxruntime-node's CPU and WebGPU providers; interleaved), writing into
 * bench/results. Options as `moefusion bench`; `--ort cpu,webgpu` (the default here) picks the onnxruntime providers,
 * `--ort none` none; --compare-direct: each round also runs the engine with the direct convolution forced (before/after
 * of the Winograd path).
 *
 *   npx tsx bench/run.ts --sizes 640x480 --train 4x128x128,4x640x480 --runs 3 --compare-direct
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BENCH, runBenchmark } from '../src/bench/e2e.ts';
import { parseProviders } from '../src/bench/onnxruntime-peer.ts';
import { shutdownEngine } from '../src/tensor/engine.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: DEFAULT_BENCH.sizes },
    train: { type: 'string', default: DEFAULT_BENCH.train },
    runs: { type: 'string', default: String(DEFAULT_BENCH.runs) },
    warmup: { type: 'string', default: String(DEFAULT_BENCH.warmup) },
    'no-torch': { type: 'boolean', default: false },
    'compare-direct': { type: 'boolean', default: false },
    python: { type: 'string', default: 'python3' },
    ort: { type: 'string', default: 'cpu,webgpu' },
    out: { type: 'string', default: resolve(import.meta.dirname, 'results') },
  },
});
await runBenchmark({
  sizes: values.sizes!,
  train: values.train!,
  runs: Number(values.runs),
  warmup: Number(values.warmup),
  torch: !values['no-torch'],
  python: values.python,
  ort: parseProviders(values.ort!),
  out: values.out!,
  compareDirect: values['compare-direct'],
});
shutdownEngine();
