/**
 * Kernel benchmark (`npx tsx bench/kernels.ts [--size 640x480] [--runs 7] [--batch 1] [--no-peers] [--only 160-64,64-32]`): every 3×3
 * convolution of MoE-Fusion (+bias+ReLU) and a 1024³ matmul on the engine, TF.js's WebGPU backend and
 * onnxruntime-node's WebGPU execution provider, on the same adapter in the same run. Prints median milliseconds,
 * GFLOP/s, the share of the best matmul rate measured on this adapter, and engine/peer time ratios (the peers' runs
 * interleaved round by round); writes
 * bench/results/kernels-<adapter>-<date>.json. Then times the engine's other kernels alone (src/bench/kernels.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initEngine, shutdownEngine } from '../src/tensor/engine.ts';
import { enginePeer } from './peers/engine.ts';
import { benchCases, timeCase } from '../src/bench/kernels.ts';
import { MOE_FUSION_CONVS } from '../src/check/cases/conv2d.ts';
import { BENCH_MATMUL } from '../src/check/cases/matmul.ts';
import { tfjsPeer } from './peers/tfjs.ts';
import { onnxPeer } from './peers/onnxruntime.ts';
import { checksum, convFlops, median, type ConvCase, type Peer, type Timed } from './peers/common.ts';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '160x120' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '7' },
    'no-peers': { type: 'boolean', default: false },
    /** Only these convolutions, as CIN-COUT pairs (the matmul always runs: it is the reference rate). */
    only: { type: 'string' },
    out: { type: 'string', default: resolve(import.meta.dirname, 'results') },
  },
});

const [width, height] = args.size!.split('x').map(Number);
const batch = Number(args.batch);
const runs = Number(args.runs);
const MATMUL = BENCH_MATMUL;
const cases: ConvCase[] = [];
const only = args.only?.split(',').map((pair) => pair.split('-').map(Number));
for (const [cin, cout] of MOE_FUSION_CONVS) {
  if (only && !only.some(([i, o]) => i === cin && o === cout)) continue;
  if (!cases.some((c) => c.cin === cin && c.cout === cout)) cases.push({ name: `conv3x3 ${cin}→${cout}`, n: batch, cin, cout, h: height, w: width, k: 3 });
}

const e = await initEngine();
const s = e.rt.handle.summary;
const adapter = `${s.vendor} ${s.device || s.description}`.trim();
console.log(`adapter: ${adapter}; images ${batch}×${width}×${height}; median of ${runs} runs`);

const peers: Peer[] = [enginePeer()];
const unavailable: Record<string, string> = {};
if (!args['no-peers'])
  for (const [name, start] of [['tfjs-webgpu', tfjsPeer], ['onnxruntime-webgpu', onnxPeer]] as const) {
    try {
      peers.push(await start());
    } catch (err) {
      unavailable[name] = (err as Error).message.split('\n')[0];
      console.log(`${name}: cannot start here (${unavailable[name]}); continuing without it`);
    }
  }

interface Row {
  name: string;
  flops: number;
  ms: Record<string, number | string>;
}

/**
 * Runs the case on every peer in rounds (one warm-up, then `runs` timed rounds), each round visiting every peer
 * once, so that a change in the machine's load during the case affects all of them alike; medians per peer.
 */
async function measure(name: string, flops: number, prepare: (p: Peer) => Promise<Timed>): Promise<Row> {
  const row: Row = { name, flops, ms: {} };
  const ready: Array<[Peer, Timed]> = [];
  for (const p of peers) {
    try {
      ready.push([p, await prepare(p)]);
    } catch (err) {
      row.ms[p.name] = `error: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  const times = new Map<Peer, number[]>(ready.map(([p]) => [p, []]));
  for (let round = -1; round < runs; round++)
    for (const [p, t] of ready) {
      if (!times.has(p)) continue;
      try {
        const ms = await t.once();
        if (round >= 0) times.get(p)!.push(ms);
      } catch (err) {
        row.ms[p.name] = `error: ${(err as Error).message.split('\n')[0]}`;
        times.delete(p);
      }
    }
  // A peer whose result differs from the engine's is reported as an error, not timed (TF.js returns garbage, without
  // an error, when a tensor exceeds one storage binding).
  let want: { sum: number; abs: number } | undefined;
  for (const [p, t] of ready) {
    if (!times.has(p)) continue;
    const got = checksum(await t.output().catch(() => [NaN]));
    want ??= got;
    if (Math.abs(got.sum - want.sum) <= 1e-4 * want.abs && Math.abs(got.abs - want.abs) <= 1e-4 * want.abs) row.ms[p.name] = median(times.get(p)!);
    else row.ms[p.name] = `error: wrong result (sum ${got.sum.toPrecision(6)}, engine ${want.sum.toPrecision(6)})`;
  }
  for (const [, t] of ready) await t.dispose();
  return row;
}

const rows: Row[] = [];
rows.push(await measure(`matmul ${MATMUL}³`, 2 * MATMUL ** 3, (p) => p.matmul(MATMUL, MATMUL, MATMUL)));
for (const c of cases) rows.push(await measure(c.name, convFlops(c), (p) => p.conv(c)));

const gflops = (r: Row, peer: string) => (typeof r.ms[peer] === 'number' ? r.flops / (r.ms[peer] as number) / 1e6 : NaN);
const best = Math.max(...peers.map((p) => gflops(rows[0], p.name)).filter(Number.isFinite));
const fmt = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const report = rows.map((r) => {
  const entry: Record<string, unknown> = { name: r.name, gflop: r.flops / 1e9 };
  for (const p of peers) {
    const ms = r.ms[p.name];
    entry[p.name] = typeof ms === 'number' ? { ms, gflops: gflops(r, p.name), shareOfBestMatmul: gflops(r, p.name) / best } : { error: ms };
  }
  const engineMs = r.ms.engine;
  const ratios: Record<string, number> = {};
  for (const p of peers.slice(1)) if (typeof r.ms[p.name] === 'number' && typeof engineMs === 'number') ratios[p.name] = engineMs / (r.ms[p.name] as number);
  entry.engineOverPeerTime = ratios;
  const cell = (p: Peer) => (typeof r.ms[p.name] === 'number' ? `${fmt(r.ms[p.name] as number, 1)} ms ${fmt(gflops(r, p.name))} GF/s` : String(r.ms[p.name]));
  const line = peers.map((p) => `${p.name} ${cell(p)}`).join(' | ');
  const ratioText = Object.entries(ratios).map(([k, v]) => `engine/${k} ${v.toFixed(2)}`).join(', ');
  console.log(`${r.name.padEnd(18)} ${line}  ${ratioText}  (engine at ${fmt((100 * gflops(r, 'engine')) / best, 0)}% of best matmul)`);
  return entry;
});
console.log(`best matmul rate on this adapter: ${fmt(best)} GFLOP/s; engine/peer < 1 means the engine is faster. All three are wall clock until the GPU is done (TF.js: one-value readback; onnxruntime: with upload and download).`);
console.log('timestamps when available; peer times are wall clock including a readback (TF.js) or upload+download (onnxruntime).');

// The engine's other kernels, alone (skipped with --only, which targets the comparison).
const engineOnly: Array<Record<string, unknown>> = [];
if (!only) {
  console.log('\nthe engine\'s other kernels (no peer has the same op):');
  // The catalogue's matmul and plain convolutions were compared above.
  for (const c of benchCases(width, height).filter((c) => !c.what.startsWith('matmul') && !(c.what.startsWith('conv2d forward') && !c.what.includes('routed')))) {
    const ms = await timeCase(c, runs);
    const rate = c.amount / ms / 1e6;
    const what = c.unit === 'flop' ? `${fmt(rate)} GFLOP/s (${fmt((100 * rate) / best, 0)}% of best matmul)` : `${fmt(rate)} GB/s`;
    console.log(`${c.what.padEnd(58)} ${fmt(ms, 1).padStart(8)} ms  ${what}`);
    engineOnly.push({ name: c.what, ms, ...(c.unit === 'flop' ? { gflops: rate, shareOfBestMatmul: rate / best } : { gbPerS: rate }) });
  }
}

mkdirSync(args.out!, { recursive: true });
const date = new Date().toISOString().slice(0, 10);
const file = resolve(args.out!, `kernels-${adapter.replace(/[^A-Za-z0-9]+/g, '_')}-${date}.json`);
writeFileSync(file, JSON.stringify({ adapter, date, size: [width, height], batch, runs, bestMatmulGflops: best, unavailable, results: report, engineOnly }, null, 2));
console.log(`wrote ${file}`);
for (const p of peers) await p.dispose();
shutdownEngine();
process.exit(0);
