/**
 * Which algorithm runs a 3×3, padding-1 convolution (forward, input gradient, weight gradient): the direct kernels
 * (conv2d.ts, conv2d-grad.ts) or Winograd F(4×4) / F(6×6) (conv2d-winograd.ts, conv2d-winograd-grad.ts). Chosen per shape from a table of measurements on the adapter:
 * the one `moefusion bench --kernels` writes (conv-table-<adapter>-<date>.json, used when MOEFUSION_CONV_TABLE names
 * it), else the built-in table of the adapter (lavapipe's below), else the direct kernel. The Winograd multiply
 * wants subgroups of 8 lanes or more; without them, and for shapes far from every entry, the direct kernel runs.
 * The algorithm and the table are part of the kernel variant (variant.ts, whose convAlgorithm decides).
 */
import { engine } from '../tensor/engine.ts';

export type ConvAlgorithm = 'direct' | 'winograd4' | 'winograd6';
export type ConvChoice = 'auto' | ConvAlgorithm;

/** The forward convolution, its input gradient (a convolution of the output gradient with the flipped weights), its weight gradient. */
export type ConvPass = 'forward' | 'input' | 'weight';

export interface ConvShape {
  /** The forward convolution's input and output channels (also for its gradients). */
  ci: number;
  co: number;
  /** Pixels of all samples of the pass's output (the weight gradient: of the output gradient). */
  pixels: number;
  pass: ConvPass;
}

/** One measured shape: the fastest algorithm there, and its speed-up over the direct kernel. */
export interface ConvTableEntry extends ConvShape {
  algorithm: ConvAlgorithm;
  speedup: number;
}

export interface ConvTable {
  /** The adapter it was measured on (vendor and device or description). */
  adapter: string;
  date: string;
  entries: ConvTableEntry[];
}

/**
 * lavapipe (llvmpipe, 8-lane subgroups), measured on 2026-12-07 with bench/conv-ab.ts at 320×240, batch 1 (routed
 * layers: 2 experts of one sample, as MoE-Fusion's), on a shared 2-core machine: speed-ups are medians of per-round
 * CPU-time ratios. The narrow convolutions of the encoders and local experts stay direct, and so does the weight
 * gradient of 32→16 (0.6×). The forward of 32→16 too: 1.14× in wall time (1.5× CPU), less than the compile time of
 * the 16-channel multiply it alone would need costs a cold start (about 3 s), and the demo fuses one image.
 */
export const LAVAPIPE_TABLE: ConvTable = {
  adapter: 'llvmpipe',
  date: '2026-12-07',
  entries: [
    ...([[1, 16], [16, 16], [32, 16], [48, 16], [16, 8], [8, 16], [16, 1]] as const).flatMap(([ci, co]) =>
      (['forward', 'input', 'weight'] as const).map((pass) => ({ ci, co, pixels: 76800, pass, algorithm: 'direct' as const, speedup: 1 }))),
    { ci: 160, co: 64, pixels: 153600, pass: 'forward', algorithm: 'winograd6', speedup: 2.87 },
    { ci: 64, co: 32, pixels: 153600, pass: 'forward', algorithm: 'winograd6', speedup: 2.13 },
    { ci: 160, co: 64, pixels: 76800, pass: 'input', algorithm: 'winograd6', speedup: 2.88 },
    { ci: 64, co: 32, pixels: 76800, pass: 'input', algorithm: 'winograd6', speedup: 1.59 },
    { ci: 32, co: 16, pixels: 76800, pass: 'input', algorithm: 'winograd6', speedup: 1.27 },
    { ci: 160, co: 64, pixels: 153600, pass: 'weight', algorithm: 'winograd6', speedup: 1.6 },
    { ci: 64, co: 32, pixels: 153600, pass: 'weight', algorithm: 'winograd4', speedup: 1.38 },
  ],
};

const CHOICES: readonly ConvChoice[] = ['auto', 'direct', 'winograd4', 'winograd6'];

/** MOEFUSION_CONV=direct|winograd4|winograd6 forces one algorithm in a whole process (Node; A/B runs of the benchmarks). */
export function convChoiceFromEnvironment(): ConvChoice {
  const v = typeof process === 'undefined' ? undefined : process.env?.MOEFUSION_CONV;
  if (v === undefined || v === '') return 'auto';
  if (!CHOICES.includes(v as ConvChoice)) throw new Error(`MOEFUSION_CONV=${v}: expected one of ${CHOICES.join(', ')}`);
  return v as ConvChoice;
}

/** The built-in table of the current adapter, or null. */
export function builtInTable(): ConvTable | null {
  const s = engine().rt.handle.summary;
  return /llvmpipe/i.test(`${s.device} ${s.description}`) ? LAVAPIPE_TABLE : null;
}

/**
 * Log-distance from a table entry e to a shape s: a factor of 2 in a channel count is 1, in the pixel count ½, and
 * only fewer pixels than the entry's count. More pixels only amortise the weight transform over more tiles: routed
 * 160→64 at 1280×1024 runs 3.6× faster with F(6×6) than direct, 64→32 2.7× (bench/conv-ab.ts), against 2.9× and 2.1×
 * at the entries' 320×240.
 */
function distance(e: ConvShape, s: ConvShape): number {
  return Math.abs(Math.log2(e.ci / s.ci)) + Math.abs(Math.log2(e.co / s.co)) + 0.5 * Math.max(0, Math.log2(e.pixels / s.pixels));
}

/** The entries of a table farther than this from a shape say nothing about it: the direct kernel runs. */
const NEAR = 2;

/** The algorithm a table picks for a shape: that of the nearest entry of the same pass, if near. */
export function lookUp(t: ConvTable, s: ConvShape): ConvAlgorithm {
  let best: ConvTableEntry | null = null;
  for (const e of t.entries) if (e.pass === s.pass && (!best || distance(e, s) < distance(best, s))) best = e;
  return best && distance(best, s) <= NEAR ? best.algorithm : 'direct';
}

/** The table MOEFUSION_CONV_TABLE names (Node), else null; checked (a clear error names the file). */
export function convTableFromEnvironment(): ConvTable | null {
  const path = typeof process === 'undefined' ? undefined : process.env?.MOEFUSION_CONV_TABLE;
  if (!path) return null;
  const read = (globalThis as { process?: { getBuiltinModule?: (m: string) => { readFileSync(p: string, e: string): string } } }).process?.getBuiltinModule?.('node:fs');
  if (!read) throw new Error(`MOEFUSION_CONV_TABLE=${path}: this Node cannot read files synchronously here`);
  return parseConvTable(read.readFileSync(path, 'utf8'), path);
}

/** A table from its JSON, every entry checked; `source` names the file in errors. */
export function parseConvTable(json: string, source: string): ConvTable {
  let t: ConvTable;
  try {
    t = JSON.parse(json) as ConvTable;
  } catch (e) {
    throw new Error(`${source}: not JSON (${(e as Error).message})`);
  }
  const ok = (e: ConvTableEntry) =>
    [e.ci, e.co, e.pixels].every((v) => Number.isInteger(v) && v > 0) && ['forward', 'input', 'weight'].includes(e.pass) &&
    ['direct', 'winograd4', 'winograd6'].includes(e.algorithm);
  if (!t || !Array.isArray(t.entries)) throw new Error(`${source}: a convolution table needs "entries"`);
  const bad = t.entries.findIndex((e) => !ok(e));
  if (bad >= 0) throw new Error(`${source}: entry ${bad} is not {ci, co, pixels, pass, algorithm} with positive sizes, a known pass and algorithm`);
  return t;
}
