/**
 * End-to-end benchmark (`npm run bench`): MoE-Fusion inference and a training step on the engine and on the
 * project's PyTorch implementation of the same network with the same weights, on the same machine in the same run.
 * Prints median and spread, peak memory, the engine/PyTorch ratio and a per-stage breakdown from GPU timestamps;
 * writes bench/results/e2e-<adapter>-<date>.json and a bar chart PNG.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initEngine, noGrad, tidy } from '../src/graph/engine.ts';
import { Tensor } from '../src/graph/tensor.ts';
import { backward } from '../src/graph/autograd.ts';
import { Adam, clipGradNorm } from '../src/graph/optimizer.ts';
import { Rng } from '../src/graph/rng.ts';
import '../src/graph/ops.ts';
import { DEFAULT_CONFIG } from '../src/model/config.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { initParameters } from '../src/model/parameters.ts';
import { saveWeights } from '../src/model/weights.ts';
import { fusionLosses } from '../src/model/losses.ts';
import { barChartSvg, writeSvgImage } from '../src/io/charts.ts';

export interface BenchOptions {
  /** Inference sizes, WIDTHxHEIGHT, comma-separated. */
  sizes: string;
  /** Training-step shapes, BATCHxHEIGHTxWIDTH, comma-separated (empty for none). */
  train: string;
  runs: number;
  warmup: number;
  /** Also time the PyTorch implementation (bench/reference/bench.py). */
  torch: boolean;
  /** Folder for the JSON results and the chart. */
  out: string;
}

export const DEFAULT_BENCH: BenchOptions = {
  sizes: '640x480',
  train: '4x128x128',
  runs: 3,
  warmup: 1,
  torch: true,
  out: resolve(import.meta.dirname, 'results'),
};

/** Runs the end-to-end benchmark and returns the path of the JSON results. */
export async function runBenchmark(args: BenchOptions): Promise<string> {
  const runs = args.runs;
  const warmup = args.warmup;
  const root = resolve(import.meta.dirname, '..');

  function parseDims(s: string): number[] {
    return s.split('x').map(Number);
  }

  function stats(times: number[]): { median: number; min: number; max: number } {
    const s = [...times].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
  }

  interface CaseResult {
    name: string;
    engine: { median: number; min: number; max: number; peakBytes: number; stages?: Array<[string, number]> };
    torch?: { median: number; min: number; max: number; peakBytes?: number; device: string } | { error: string };
    ratio?: number;
  }

  const e = await initEngine();
  const rt = e.rt;
  const cfg = DEFAULT_CONFIG;
  const params = initParameters(cfg, 1);
  // Non-zero gates so that routing is exercised as with trained weights.
  const rng = new Rng(3);
  for (const [name, t] of params)
    if (name.endsWith('w_gate') || name.endsWith('w_noise')) {
      const fresh = Tensor.fromArray(rng.normal(t.size, 1e-3), t.shape);
      rt.copy(fresh.buffer, 0, t.buffer, 0, t.bytes);
      fresh.dispose();
    }
  const net = new FusionNet(params, cfg);
  const adapter = `${rt.handle.summary.vendor} ${rt.handle.summary.device || rt.handle.summary.description}`.trim();
  console.log(`adapter: ${adapter} (${rt.handle.summary.isSoftware ? 'software' : 'hardware'})`);

  async function timeIt(fn: () => Promise<void>): Promise<number[]> {
    for (let i = 0; i < warmup; i++) await fn();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    return times;
  }

  async function stageBreakdown(fn: () => Promise<void>): Promise<Array<[string, number]>> {
    rt.profiling = true;
    rt.timestamp('start');
    await fn();
    rt.timestamp('end');
    const marks = await rt.readTimestamps();
    rt.profiling = false;
    const out: Array<[string, number]> = [];
    for (let i = 0; i + 1 < marks.length; i++) out.push([marks[i][0], marks[i + 1][1] - marks[i][1]]);
    return out;
  }

  function inputs(B: number, H: number, W: number) {
    const r = new Rng(B * H + W);
    return { ir: r.uniform(B * H * W, 0, 1), vis: r.uniform(B * H * W, 0, 1) };
  }

  const results: CaseResult[] = [];

  for (const size of args.sizes.split(',')) {
    const [W, H] = parseDims(size);
    const { ir, vis } = inputs(1, H, W);
    const infer = async () => {
      const out = noGrad(() => tidy(() => net.forward(Tensor.fromArray(ir, [1, 1, H, W]), Tensor.fromArray(vis, [1, 1, H, W])).fused));
      await rt.sync();
      out.dispose();
    };
    rt.pool.resetPeak();
    const times = await timeIt(infer);
    const peak = rt.pool.peakBytes;
    const stages = await stageBreakdown(infer);
    results.push({ name: `inference 1×${W}×${H}`, engine: { ...stats(times), peakBytes: peak, stages } });
    console.log(`engine inference ${W}×${H}: median ${stats(times).median.toFixed(0)} ms, peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
  }

  const opt = new Adam([...params.values()], { lr: 1e-4, weightDecay: 1e-4 });
  for (const spec of args.train.split(',').filter(Boolean)) {
    const [B, H, W] = parseDims(spec);
    const { ir, vis } = inputs(B, H, W);
    const mask = new Float32Array(B * H * W);
    const E = cfg.experts;
    const step = async () => {
      const shape = [B, 1, H, W];
      const losses = tidy(() => {
        const irT = Tensor.fromArray(ir, shape);
        const visT = Tensor.fromArray(vis, shape);
        const out = net.forward(irT, visT, null, {
          train: true,
          noise: { fg: Tensor.fromArray(rng.normal(B * E), [B, E]), bg: Tensor.fromArray(rng.normal(B * E), [B, E]), global: Tensor.fromArray(rng.normal(B * E), [B, E]) },
        });
        rt.timestamp('losses');
        return fusionLosses(cfg, out.fused, visT, irT, Tensor.fromArray(mask, shape), out.auxLoss);
      });
      rt.timestamp('backward');
      backward(losses.total);
      rt.timestamp('optimizer');
      clipGradNorm([...params.values()], 35).dispose();
      opt.step();
      opt.zeroGrad();
      await rt.sync();
      for (const t of Object.values(losses)) t.dispose();
    };
    rt.pool.resetPeak();
    const times = await timeIt(step);
    const peak = rt.pool.peakBytes;
    const stages = await stageBreakdown(step);
    results.push({ name: `train step ${B}×${W}×${H}`, engine: { ...stats(times), peakBytes: peak, stages } });
    console.log(`engine train step ${B}×${W}×${H}: median ${stats(times).median.toFixed(0)} ms, peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
  }

  if (args.torch) {
    const dir = mkdtempSync(join(tmpdir(), 'moefusion-bench-'));
    try {
      const weights = join(dir, 'w.safetensors');
      await saveWeights(weights, params, cfg);
      const out = execFileSync(
        'python3',
        [join(root, 'bench/reference/bench.py'), '--weights', weights, '--sizes', args.sizes, '--train', args.train, '--runs', String(runs), '--warmup', String(warmup)],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
      );
      const torch = JSON.parse(out.trim().split('\n').pop()!) as Record<string, { median: number; min: number; max: number; peakBytes?: number; device: string }>;
      for (const r of results) {
        const t = torch[r.name];
        if (!t) continue;
        r.torch = t;
        r.ratio = r.engine.median / t.median;
      }
    } catch (err) {
      for (const r of results) r.torch = { error: `PyTorch run failed: ${(err as Error).message.split('\n')[0]}` };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  console.log('\n| case | engine median (ms) | engine min–max | engine peak MiB | PyTorch median (ms) | engine / PyTorch |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    const t = r.torch && 'median' in r.torch ? r.torch : null;
    console.log(
      `| ${r.name} | ${r.engine.median.toFixed(0)} | ${r.engine.min.toFixed(0)}–${r.engine.max.toFixed(0)} | ${(r.engine.peakBytes / 2 ** 20).toFixed(0)} | ${t ? `${t.median.toFixed(0)} (${t.device})` : 'n/a'} | ${r.ratio ? `${r.ratio.toFixed(2)}×` : 'n/a'} |`,
    );
  }
  for (const r of results) {
    if (!r.engine.stages?.length) continue;
    console.log(`\nstages of ${r.name} (GPU timestamps, ms):`);
    for (const [label, ms] of r.engine.stages) console.log(`  ${label.padEnd(28)} ${ms.toFixed(1)}`);
  }

  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `e2e-${slug}-${date}.json`);
  writeFileSync(file, JSON.stringify({ adapter, software: rt.handle.summary.isSoftware, date, runs, warmup, results }, null, 2));
  const torchDevice = results.map((r) => (r.torch && 'device' in r.torch ? r.torch.device : null)).find(Boolean);
  const chart = barChartSvg(
    results.map((r) => ({ label: r.name, values: [r.engine.median, r.torch && 'median' in r.torch ? r.torch.median : NaN] })),
    [`engine (${adapter})`, `PyTorch${torchDevice ? ` (${torchDevice})` : ''}`],
    { title: `MoE-Fusion end to end, ${date}`, yLabel: 'milliseconds (lower is faster)' },
  );
  await writeSvgImage(join(args.out, `e2e-${slug}-${date}.png`), chart);
  console.log(`\nwrote ${file}`);
  return file;

}

function isEntryPoint(): boolean {
  return !!process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
}

if (isEntryPoint()) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: DEFAULT_BENCH.sizes },
      train: { type: 'string', default: DEFAULT_BENCH.train },
      runs: { type: 'string', default: String(DEFAULT_BENCH.runs) },
      warmup: { type: 'string', default: String(DEFAULT_BENCH.warmup) },
      'no-torch': { type: 'boolean', default: false },
      out: { type: 'string', default: DEFAULT_BENCH.out },
    },
  });
  await runBenchmark({
    sizes: values.sizes!,
    train: values.train!,
    runs: Number(values.runs),
    warmup: Number(values.warmup),
    torch: !values['no-torch'],
    out: values.out!,
  });
}
