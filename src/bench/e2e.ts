/**
 * End-to-end benchmark (`moefusion bench`, `npm run bench`): MoE-Fusion inference and a training step on the
 * engine and on the project's PyTorch implementation of the same network with the same weights, on the same machine
 * in the same run. They take turns round by round (engine, PyTorch, PyTorch channels_last, engine, …) so that a
 * change in the machine's load reaches all; the ratio reported is the median of the per-round ratios to PyTorch in
 * the reference code's layout (NCHW), the ratio of record; the ratio to PyTorch with channels_last tensors (its
 * fastest CPU layout) is reported beside it. Also: spread, peak memory and a per-stage breakdown from GPU
 * timestamps. Writes e2e-<adapter>-<date>.json and a bar chart PNG.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { initEngine, noGrad, tidy } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { backward } from '../autograd/tape.ts';
import { Adam, clipGradNorm } from '../optim/optimizer.ts';
import { Rng } from '../util/rng.ts';
import { DEFAULT_CONFIG } from '../model/config.ts';
import { FusionNet } from '../model/fusion-net.ts';
import { initParameters } from '../model/parameters.ts';
import { saveWeights } from '../model/weights-file.ts';
import { fusionLosses } from '../model/losses.ts';
import { barChartSvg, writeSvgImage } from '../io/charts.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { setConvAlgorithm } from '../kernels/conv2d-choice.ts';

export interface BenchOptions {
  /** Inference sizes, WIDTHxHEIGHT, comma-separated. */
  sizes: string;
  /** Training-step shapes, BATCHxWIDTHxHEIGHT, comma-separated (empty for none). */
  train: string;
  runs: number;
  warmup: number;
  /** Also time the PyTorch implementation (bench/reference/bench.py). */
  torch: boolean;
  /** Folder for the JSON results and the chart. */
  out: string;
  /** Python interpreter for the PyTorch side. */
  python?: string;
  /**
   * Also run the engine with the direct convolution forced, each round right after the default run (before/after
   * of the Winograd path in one process).
   */
  compareDirect?: boolean;
}

export const DEFAULT_BENCH: BenchOptions = { sizes: '640x480', train: '4x128x128', runs: 3, warmup: 1, torch: true, out: '.' };

/** The PyTorch peer's script, from the package root (src/bench → ../..). */
const TORCH_SCRIPT = resolve(import.meta.dirname, '../../bench/reference/bench.py');

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface CaseResult {
  name: string;
  engine: Spread & { peakBytes: number; stages?: Array<[string, number]> };
  torch?: (Spread & { peakBytes?: number | null; device: string }) | { error: string };
  /** Median over the rounds of engine time / PyTorch time in that round. */
  ratio?: number;
  /** PyTorch with channels_last tensors, and the median ratio to it. */
  torchChannelsLast?: Spread;
  ratioChannelsLast?: number;
  /** With compareDirect: the engine with the direct convolution forced, and the median of its time / the default's. */
  engineDirect?: Spread;
  speedupOverDirect?: number;
}

interface BenchCase {
  name: string;
  run(): Promise<void>;
}

export function spread(times: number[]): Spread {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

/** "AxBxC" → numbers, each a positive integer, else an error naming the option. */
export function parseDims(spec: string, count: number, what: string): number[] {
  const parts = spec.split('x').map(Number);
  if (parts.length !== count || parts.some((n) => !Number.isInteger(n) || n < 1))
    throw new RangeError(`${what} ${spec}: expected ${count} positive integers joined by x`);
  return parts;
}

/** The PyTorch side as a child process that runs one case per request. */
class TorchPeer {
  private lines: AsyncIterator<string>;
  private constructor(private proc: ChildProcessByStdio<Writable, Readable, null>, readonly device: string, lines: AsyncIterator<string>) {
    this.lines = lines;
  }

  static async start(python: string, weights: string, sizes: string, train: string): Promise<TorchPeer> {
    const proc = spawn(python, [TORCH_SCRIPT, '--weights', weights, '--sizes', sizes, '--train', train], { stdio: ['pipe', 'pipe', 'inherit'], env: { TORCH_CPP_LOG_LEVEL: 'ERROR', ...process.env } });
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<never>((_, reject) => {
      proc.on('error', (e) => reject(new Error(`${python}: ${e.message}`)));
      proc.on('exit', (code) => reject(new Error(`${python} ${TORCH_SCRIPT} exited with code ${code} before it was ready`)));
    });
    const first = await Promise.race([lines.next(), exited]);
    const ready = JSON.parse(first.value ?? '{}') as { ready?: string };
    if (!ready.ready) throw new Error(`the PyTorch peer did not start: ${first.value}`);
    return new TorchPeer(proc, ready.ready, lines);
  }

  async run(name: string): Promise<{ ms: number; peakBytes: number | null }> {
    this.proc.stdin.write(name + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the PyTorch peer stopped');
    const r = JSON.parse(value) as { ms?: number; peakBytes?: number | null; error?: string };
    if (r.error || r.ms === undefined) throw new Error(r.error ?? `unexpected reply ${value}`);
    return { ms: r.ms, peakBytes: r.peakBytes ?? null };
  }

  stop(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

async function stageBreakdown(rt: Runtime, fn: () => Promise<void>): Promise<Array<[string, number]>> {
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

/** Runs the end-to-end benchmark and returns the path of the JSON results. */
export async function runBenchmark(args: BenchOptions, log: (line: string) => void = console.log): Promise<string> {
  const sizes = args.sizes.split(',').filter(Boolean).map((s) => parseDims(s, 2, '--sizes'));
  const trains = args.train.split(',').filter(Boolean).map((s) => parseDims(s, 3, '--train'));
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
  log(`adapter: ${adapter} (${rt.handle.summary.isSoftware ? 'software' : 'hardware'})`);

  const inputs = (B: number, H: number, W: number) => {
    const r = new Rng(B * H + W);
    return { ir: r.uniform(B * H * W, 0, 1), vis: r.uniform(B * H * W, 0, 1) };
  };
  const cases: BenchCase[] = [];
  for (const [W, H] of sizes) {
    const { ir, vis } = inputs(1, H, W);
    cases.push({
      name: `inference 1×${W}×${H}`,
      run: async () => {
        const out = noGrad(() => tidy(() => net.forward(Tensor.fromArray(ir, [1, 1, H, W]), Tensor.fromArray(vis, [1, 1, H, W])).fused));
        await rt.sync();
        out.dispose();
      },
    });
  }
  const opt = new Adam([...params.values()], { lr: 1e-4, weightDecay: 1e-4 });
  for (const [B, W, H] of trains) {
    const { ir, vis } = inputs(B, H, W);
    const E = cfg.experts;
    const shape = [B, 1, H, W];
    cases.push({
      name: `train step ${B}×${W}×${H}`,
      run: async () => {
        const losses = tidy(() => {
          const irT = Tensor.fromArray(ir, shape);
          const visT = Tensor.fromArray(vis, shape);
          const noise = () => Tensor.fromArray(rng.normal(B * E), [B, E]);
          const out = net.forward(irT, visT, null, { train: true, noise: { fg: noise(), bg: noise(), global: noise() } });
          rt.timestamp('losses');
          return fusionLosses(cfg, out.fused, visT, irT, Tensor.zeros(shape), out.auxLoss);
        });
        rt.timestamp('backward');
        backward(losses.total);
        rt.timestamp('optimizer');
        clipGradNorm([...params.values()], 35).dispose();
        opt.step();
        opt.zeroGrad();
        await rt.sync();
        for (const t of Object.values(losses)) t.dispose();
      },
    });
  }

  const dir = mkdtempSync(join(tmpdir(), 'moefusion-bench-'));
  let torch: TorchPeer | null = null;
  let torchError: string | null = null;
  try {
    if (args.torch) {
      try {
        const weights = join(dir, 'w.safetensors');
        await saveWeights(weights, params, cfg);
        if (!existsSync(TORCH_SCRIPT)) throw new Error(`${TORCH_SCRIPT} is missing`);
        torch = await TorchPeer.start(args.python ?? 'python3', weights, args.sizes, args.train);
        log(`PyTorch peer on ${torch.device}`);
      } catch (err) {
        torchError = `PyTorch run failed: ${(err as Error).message.split('\n')[0]}`;
        log(torchError);
      }
    }
    const results: CaseResult[] = [];
    for (const c of cases) {
      const engineTimes: number[] = [];
      const torchTimes: number[] = [];
      const ratios: number[] = [];
      const clTimes: number[] = [];
      const clRatios: number[] = [];
      let torchPeak: number | null = null;
      rt.pool.resetPeak();
      const directTimes: number[] = [];
      const speedups: number[] = [];
      for (let round = 0; round < args.warmup + args.runs; round++) {
        const t0 = performance.now();
        await c.run();
        const ms = performance.now() - t0;
        let dms: number | null = null;
        if (args.compareDirect) {
          setConvAlgorithm('direct');
          try {
            const t1 = performance.now();
            await c.run();
            dms = performance.now() - t1;
          } finally {
            setConvAlgorithm('auto');
          }
        }
        let tms: number | null = null;
        let cms: number | null = null;
        if (torch && !torchError) {
          try {
            const r = await torch.run(c.name);
            tms = r.ms;
            torchPeak = r.peakBytes ?? torchPeak;
            cms = (await torch.run(`${c.name} channels_last`)).ms;
          } catch (err) {
            torchError = `PyTorch run failed: ${(err as Error).message}`;
          }
        }
        if (round < args.warmup) continue;
        engineTimes.push(ms);
        if (dms !== null) {
          directTimes.push(dms);
          speedups.push(dms / ms);
        }
        if (tms !== null && cms !== null) {
          torchTimes.push(tms);
          ratios.push(ms / tms);
          clTimes.push(cms);
          clRatios.push(ms / cms);
        }
        log(`${c.name} round ${round - args.warmup + 1}: engine ${ms.toFixed(0)} ms${dms !== null ? ` (direct convolution ${dms.toFixed(0)} ms)` : ''}${tms !== null ? `, PyTorch ${tms.toFixed(0)} ms, channels_last ${cms?.toFixed(0)} ms` : ''}`);
      }
      const peakBytes = rt.pool.peakBytes;
      const stages = await stageBreakdown(rt, c.run);
      const r: CaseResult = { name: c.name, engine: { ...spread(engineTimes), peakBytes, stages } };
      if (directTimes.length) {
        r.engineDirect = spread(directTimes);
        r.speedupOverDirect = spread(speedups).median;
      }
      if (torchTimes.length === engineTimes.length && torch) {
        r.torch = { ...spread(torchTimes), peakBytes: torchPeak, device: torch.device };
        r.ratio = spread(ratios).median;
        r.torchChannelsLast = spread(clTimes);
        r.ratioChannelsLast = spread(clRatios).median;
      } else if (args.torch) r.torch = { error: torchError ?? 'PyTorch did not run' };
      results.push(r);
    }
    return await report(args, adapter, rt.handle.summary.isSoftware, results, log);
  } finally {
    torch?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function report(args: BenchOptions, adapter: string, software: boolean, results: CaseResult[], log: (line: string) => void): Promise<string> {
  const ms = (v: number) => v.toFixed(0);
  log('\n| case | engine median (ms) | engine min–max | engine peak MiB | PyTorch NCHW median (ms) | engine / PyTorch NCHW | PyTorch channels_last (ms) | engine / channels_last |');
  log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const t = r.torch && 'median' in r.torch ? r.torch : null;
    const cl = r.torchChannelsLast;
    log(
      `| ${r.name} | ${ms(r.engine.median)} | ${ms(r.engine.min)}–${ms(r.engine.max)} | ${ms(r.engine.peakBytes / 2 ** 20)} | ${t ? `${ms(t.median)} (${t.device})` : 'n/a'} | ${r.ratio ? `${r.ratio.toFixed(2)}×` : 'n/a'} | ${cl ? ms(cl.median) : 'n/a'} | ${r.ratioChannelsLast ? `${r.ratioChannelsLast.toFixed(2)}×` : 'n/a'} |`,
    );
  }
  for (const r of results)
    if (r.engineDirect) log(`${r.name}: engine with the direct convolution forced ${ms(r.engineDirect.median)} ms; default / direct ${r.speedupOverDirect!.toFixed(2)}× faster (median of rounds)`);
  for (const r of results) {
    if (!r.engine.stages?.length) continue;
    log(`\nstages of ${r.name} (GPU timestamps, ms):`);
    for (const [label, v] of r.engine.stages) log(`  ${label.padEnd(28)} ${v.toFixed(1)}`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `e2e-${slug}-${date}.json`);
  writeFileSync(file, JSON.stringify({ adapter, software, date, runs: args.runs, warmup: args.warmup, interleaved: true, results }, null, 2));
  const torchDevice = results.map((r) => (r.torch && 'device' in r.torch ? r.torch.device : null)).find(Boolean);
  const chart = barChartSvg(
    results.map((r) => ({ label: r.name, values: [r.engine.median, r.torch && 'median' in r.torch ? r.torch.median : NaN, r.torchChannelsLast?.median ?? NaN] })),
    [`engine (${adapter})`, `PyTorch${torchDevice ? ` (${torchDevice})` : ''}`, 'PyTorch channels_last'],
    { title: `MoE-Fusion end to end, ${date}`, yLabel: 'milliseconds (lower is faster)' },
  );
  await writeSvgImage(join(args.out, `e2e-${slug}-${date}.png`), chart);
  log(`\nwrote ${file}`);
  return file;
}
