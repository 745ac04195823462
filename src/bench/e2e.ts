/**
 * End-to-end benchmark (`moefusion bench`, `npm run bench`): MoE-Fusion inference and a training step on the
 * engine and on the project's PyTorch implementation of the same network with the same weights, on the same machine
 * in the same run; inference also on onnxruntime-node (the exported network, CPU and WebGPU providers) when asked.
 * They take turns round by round (engine, PyTorch, PyTorch channels_last, onnxruntime…, engine, …) so that a change
 * in the machine's load reaches all; the ratio reported is the median of the per-round ratios to PyTorch in the
 * reference code's layout (NCHW), the ratio of record; the ratio to PyTorch with channels_last tensors (its fastest
 * CPU layout) is reported beside it. Every peer fuses the same pair, and its output is checked against the engine's
 * before any timing. Also: spread, peak memory and a per-stage breakdown from GPU timestamps. Writes
 * e2e-<adapter>-<date>.json (-2, -3, … for later runs of the day) and a bar chart PNG beside it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
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
import { saveWeights } from '../model/weights-file.ts';
import { exportOnnx } from '../model/onnx-export.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { maxRelError } from '../check/compare.ts';
import { OrtPeer, type OrtProvider } from './onnxruntime-peer.ts';
import { fusionLosses } from '../model/losses.ts';
import { barChartSvg, writeSvgImage } from '../io/charts.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { withKernelVariant } from '../kernels/variant.ts';

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
  /** Also run inference on onnxruntime-node with these execution providers (the exported network). */
  ort?: readonly OrtProvider[];
  /**
   * Also run the engine with the direct convolution forced, each round right after the default run (before/after
   * of the Winograd path in one process).
   */
  compareDirect?: boolean;
}

export const DEFAULT_BENCH: BenchOptions = { sizes: '640x480', train: '4x128x128', runs: 3, warmup: 1, torch: true, out: '.', ort: [] };

/** Largest relative difference from the engine's output for a peer to be timed (the ONNX export's promise). */
export const CHECK_TOLERANCE = 1e-3;

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
  /** Inference: each peer's largest relative difference from the engine's output, checked before timing, or its failure. */
  check?: Record<string, number | string>;
  /** Inference on onnxruntime's providers: times and the median of engine / peer per round, or why it was not timed. */
  onnxruntime?: Record<string, (Spread & { ratio: number }) | { error: string }>;
  /** PyTorch with channels_last tensors, and the median ratio to it. */
  torchChannelsLast?: Spread;
  ratioChannelsLast?: number;
  /** With compareDirect: the engine with the direct convolution forced, and the median of its time / the default's. */
  engineDirect?: Spread;
  speedupOverDirect?: number;
}

/** An inference pair (1,1,H,W), the same for every peer. */
interface Pair {
  width: number;
  height: number;
  ir: Float32Array;
  vis: Float32Array;
}

interface BenchCase {
  name: string;
  run(): Promise<void>;
  /** Inference cases: their pair, and the engine's output of it. */
  pair?: Pair;
  output?(): Promise<Float32Array>;
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

  static async start(python: string, weights: string, sizes: string, train: string, inputs: string): Promise<TorchPeer> {
    const proc = spawn(python, [TORCH_SCRIPT, '--weights', weights, '--sizes', sizes, '--train', train, '--inputs', inputs], { stdio: ['pipe', 'pipe', 'inherit'], env: { TORCH_CPP_LOG_LEVEL: 'ERROR', ...process.env } });
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

  /** The fused image of an inference case (bench.py writes it to a file). */
  async output(name: string, path: string): Promise<Float32Array> {
    this.proc.stdin.write(`save ${name}\t${path}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the PyTorch peer stopped');
    const r = JSON.parse(value) as { saved?: string; error?: string };
    if (!r.saved) throw new Error(r.error ?? `unexpected reply ${value}`);
    return readSafetensors(path).tensors.get('fused')!.data;
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
  const net = FusionNet.init(cfg, 1);
  const params = net.parameters().map(([, t]) => t);
  // Non-zero gates so that routing is exercised as with trained weights.
  const rng = new Rng(3);
  for (const m of Object.values(net.mixtures))
    for (const t of [m.w_gate, m.w_noise]) {
      const fresh = Tensor.fromArray(rng.normal(t.size, 1e-3), t.shape);
      rt.copy(fresh.buffer, 0, t.buffer, 0, t.bytes);
      fresh.dispose();
    }
  const adapter = `${rt.handle.summary.vendor} ${rt.handle.summary.device || rt.handle.summary.description}`.trim();
  log(`adapter: ${adapter} (${rt.handle.summary.isSoftware ? 'software' : 'hardware'})`);

  const inputs = (B: number, H: number, W: number) => {
    const r = new Rng(B * H + W);
    return { ir: r.uniform(B * H * W, 0, 1), vis: r.uniform(B * H * W, 0, 1) };
  };
  const cases: BenchCase[] = [];
  for (const [W, H] of sizes) {
    const { ir, vis } = inputs(1, H, W);
    const forward = () => noGrad(() => tidy(() => net.forward(Tensor.fromArray(ir, [1, 1, H, W]), Tensor.fromArray(vis, [1, 1, H, W])).fused));
    cases.push({
      name: `inference 1×${W}×${H}`,
      run: async () => {
        const out = forward();
        await rt.sync();
        out.dispose();
      },
      pair: { width: W, height: H, ir, vis },
      output: async () => {
        const out = forward();
        const data = await out.data();
        out.dispose();
        return data;
      },
    });
  }
  const opt = new Adam(params, { lr: 1e-4, weightDecay: 1e-4 });
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
          return fusionLosses(cfg, out.fused, visT, irT, { mask: Tensor.zeros(shape) }, out.auxLoss);
        });
        rt.timestamp('backward');
        backward(losses.total);
        rt.timestamp('optimizer');
        clipGradNorm(params, 35).dispose();
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
  const ort: Array<OrtPeer | { name: string; error: string }> = [];
  try {
    const weights = join(dir, 'w.safetensors');
    if (args.torch || args.ort?.length) await saveWeights(weights, net);
    if (args.torch) {
      try {
        if (!existsSync(TORCH_SCRIPT)) throw new Error(`${TORCH_SCRIPT} is missing`);
        const pairs = join(dir, 'inputs.safetensors');
        writeSafetensors(pairs, Object.fromEntries(cases.flatMap((c) => (c.pair ? pairTensors(c.pair) : []))));
        torch = await TorchPeer.start(args.python ?? 'python3', weights, args.sizes, args.train, pairs);
        log(`PyTorch peer on ${torch.device}`);
      } catch (err) {
        torchError = `PyTorch run failed: ${(err as Error).message.split('\n')[0]}`;
        log(torchError);
      }
    }
    if (args.ort?.length) {
      const model = await exportOnnx(weights);
      for (const provider of args.ort) {
        try {
          ort.push(await OrtPeer.start(provider, model));
          log(`onnxruntime-node peer on its ${provider} execution provider`);
        } catch (err) {
          ort.push({ name: `onnxruntime-${provider}`, error: `could not start: ${(err as Error).message.split('\n')[0]}` });
          log(`onnxruntime-${provider}: could not start: ${(err as Error).message}`);
        }
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
      const ortRuns = new Map<OrtPeer, { times: number[]; ratios: number[] }>();
      const ortFailed: Record<string, string> = Object.fromEntries(ort.flatMap((p) => ('error' in p ? [[p.name, p.error]] : [])));
      const check = c.pair && c.output ? await checkOutputs(c.pair, await c.output(), torch && !torchError ? torch : null, c.name, dir, ort, log) : undefined;
      if (check && torch && typeof check.torch === 'string') torchError = `PyTorch run failed: ${check.torch}`;
      if (c.pair)
        for (const p of ort)
          if (p instanceof OrtPeer) {
            if (typeof check?.[p.name] === 'string') ortFailed[p.name] = check[p.name] as string;
            else ortRuns.set(p, { times: [], ratios: [] });
          }
      rt.pool.resetPeak();
      const directTimes: number[] = [];
      const speedups: number[] = [];
      for (let round = 0; round < args.warmup + args.runs; round++) {
        const t0 = performance.now();
        await c.run();
        const ms = performance.now() - t0;
        let dms: number | null = null;
        if (args.compareDirect) {
          const t1 = performance.now();
          await withKernelVariant({ conv: 'direct' }, c.run);
          dms = performance.now() - t1;
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
        const ortTimes: string[] = [];
        for (const [p, runs] of ortRuns) {
          try {
            const t1 = performance.now();
            await p.fuse(c.pair!.ir, c.pair!.vis, half(c.pair!), c.pair!.width, c.pair!.height);
            const pms = performance.now() - t1;
            if (round < args.warmup) continue;
            runs.times.push(pms);
            runs.ratios.push(ms / pms);
            ortTimes.push(`, ${p.name} ${pms.toFixed(0)} ms`);
          } catch (err) {
            ortFailed[p.name] = `failed: ${(err as Error).message.split('\n')[0]}`;
            ortRuns.delete(p);
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
        log(`${c.name} round ${round - args.warmup + 1}: engine ${ms.toFixed(0)} ms${dms !== null ? ` (direct convolution ${dms.toFixed(0)} ms)` : ''}${tms !== null ? `, PyTorch ${tms.toFixed(0)} ms, channels_last ${cms?.toFixed(0)} ms` : ''}${ortTimes.join('')}`);
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
      if (check) r.check = check;
      if (c.pair && ort.length)
        r.onnxruntime = Object.fromEntries([
          ...[...ortRuns].map(([p, runs]) => [p.name, { ...spread(runs.times), ratio: spread(runs.ratios).median }]),
          ...Object.entries(ortFailed).map(([name, error]) => [name, { error }]),
        ]);
      results.push(r);
    }
    return await report(args, adapter, rt.handle.summary.isSoftware, results, log);
  } finally {
    torch?.stop();
    for (const p of ort) if (p instanceof OrtPeer) await p.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The tensors bench.py reads for a pair (`--inputs`). */
function pairTensors(p: Pair): Array<[string, { shape: number[]; data: Float32Array }]> {
  const shape = [1, 1, p.height, p.width];
  return [
    [`ir.${p.width}x${p.height}`, { shape, data: p.ir }],
    [`vis.${p.width}x${p.height}`, { shape, data: p.vis }],
  ];
}

/** Att 0.5 everywhere, as the engine and PyTorch take it when none is given. */
function half(p: Pair): Float32Array {
  return new Float32Array(p.width * p.height).fill(0.5);
}

/**
 * Each peer's output of the pair against the engine's: the largest relative difference, or why it is not timed
 * (it failed, or it differs by more than CHECK_TOLERANCE).
 */
async function checkOutputs(
  pair: Pair,
  engineOut: Float32Array,
  torch: TorchPeer | null,
  name: string,
  dir: string,
  ort: Array<OrtPeer | { name: string }>,
  log: (line: string) => void,
): Promise<Record<string, number | string>> {
  const check: Record<string, number | string> = {};
  const compare = async (peer: string, output: () => Promise<Float32Array>) => {
    try {
      const err = maxRelError(await output(), engineOut);
      check[peer] = err <= CHECK_TOLERANCE ? err : `its output differs from the engine's by ${err.toExponential(2)} (relative), more than ${CHECK_TOLERANCE}`;
    } catch (e) {
      check[peer] = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
    log(`${name}: ${peer} against the engine: ${typeof check[peer] === 'number' ? `max relative difference ${(check[peer] as number).toExponential(2)}` : check[peer]}`);
  };
  if (torch) await compare('torch', () => torch.output(name, join(dir, 'fused.safetensors')));
  for (const p of ort) if (p instanceof OrtPeer) await compare(p.name, () => p.fuse(pair.ir, pair.vis, half(pair), pair.width, pair.height));
  return check;
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
  const withOrt = results.filter((r) => r.onnxruntime);
  if (withOrt.length) {
    log('\n| case | peer | median (ms) | min–max | engine / peer (median of rounds) | output vs engine (max relative difference) |');
    log('|---|---|---:|---:|---:|---|');
    for (const r of withOrt)
      for (const [peer, v] of Object.entries(r.onnxruntime!)) {
        const diff = r.check?.[peer];
        const checked = typeof diff === 'number' ? diff.toExponential(2) : 'n/a';
        log('error' in v ? `| ${r.name} | ${peer} | ${v.error} | | | ${checked} |` : `| ${r.name} | ${peer} | ${ms(v.median)} | ${ms(v.min)}–${ms(v.max)} | ${v.ratio.toFixed(2)}× | ${checked} |`);
      }
  }
  for (const r of results) {
    if (!r.engine.stages?.length) continue;
    log(`\nstages of ${r.name} (GPU timestamps, ms):`);
    for (const [label, v] of r.engine.stages) log(`  ${label.padEnd(28)} ${v.toFixed(1)}`);
  }
  const date = new Date().toISOString().slice(0, 10);
  const slug = adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  // A second run on the same day gets its own name: the first run's results stay.
  let base = join(args.out, `e2e-${slug}-${date}`);
  for (let n = 2; existsSync(`${base}.json`); n++) base = join(args.out, `e2e-${slug}-${date}-${n}`);
  const file = `${base}.json`;
  await writeFileAtomic(file, JSON.stringify({ adapter, software, date, runs: args.runs, warmup: args.warmup, interleaved: true, results }, null, 2));
  const torchDevice = results.map((r) => (r.torch && 'device' in r.torch ? r.torch.device : null)).find(Boolean);
  const ortPeers = [...new Set(withOrt.flatMap((r) => Object.keys(r.onnxruntime!)))];
  const ortMedian = (r: CaseResult, peer: string) => {
    const v = r.onnxruntime?.[peer];
    return v && 'median' in v ? v.median : NaN;
  };
  const chart = barChartSvg(
    results.map((r) => ({
      label: r.name,
      values: [r.engine.median, r.torch && 'median' in r.torch ? r.torch.median : NaN, r.torchChannelsLast?.median ?? NaN, ...ortPeers.map((p) => ortMedian(r, p))],
    })),
    // Short names for onnxruntime's providers: the legend is one line.
    [
      `engine (${adapter})`,
      `PyTorch${torchDevice ? ` (${torchDevice})` : ''}`,
      'PyTorch channels_last',
      ...ortPeers.map((p) => p.replace('onnxruntime-cpu', 'ORT CPU').replace('onnxruntime-webgpu', 'ORT WebGPU')),
    ],
    { title: `MoE-Fusion end to end, ${date}`, yLabel: 'milliseconds (lower is faster)' },
  );
  await writeSvgImage(`${base}.png`, chart);
  log(`\nwrote ${file}`);
  return file;
}
