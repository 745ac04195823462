/**
 * Scores folders of fused images against infrared/visible source folders under one protocol: pairs files by
 * name, checks every input, and summarises each method by mean and (population) standard deviation.
 * Each image pair is scored independently of the others, several at a time on worker threads; the sources
 * of a pair are read once and their filtered maps are shared by all methods (see memoizeByObject).
 */
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname, join, parse } from 'node:path';
import { readImage, type Image } from '../io/image.ts';
import { METRIC_NAMES, type MetricValues, type Protocol } from './protocols.ts';
import { ScorePool } from './score-pool.ts';
import { VIF_MIN_SIDE } from './vif.ts';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'];

export interface FusedFolder {
  method: string;
  dir: string;
}

export interface EvaluateOptions {
  irDir: string;
  viDir: string;
  fused: FusedFolder[];
  protocol: Protocol;
  /** Skip bad inputs (reported through onSkip) instead of failing on the first. */
  skipBad?: boolean;
  onSkip?: (reason: string) => void;
  onProgress?: (done: number, total: number) => void;
  /** Worker threads scoring pairs side by side (default: one per core, at most 8); 0 or 1: this thread. */
  workers?: number;
}

export interface ImageScore {
  image: string;
  values: MetricValues;
}

export interface MethodSummary {
  method: string;
  count: number;
  mean: MetricValues;
  std: MetricValues;
  perImage: ImageScore[];
}

/** Bad input: names the file and what is wrong with it. */
export class EvaluationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvaluationError';
  }
}

/** Image files of a folder, keyed by name without extension. */
function listImages(dir: string, role: string): Map<string, string> {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    names = readdirSync(dir);
  } catch (e) {
    throw new EvaluationError(`${role} folder ${dir}: cannot be listed (${(e as Error).message})`);
  }
  const byStem = new Map<string, string>();
  for (const name of names.sort()) {
    if (!IMAGE_EXTENSIONS.includes(extname(name).toLowerCase())) continue;
    const stem = parse(name).name;
    const previous = byStem.get(stem);
    if (previous) throw new EvaluationError(`${role} folder ${dir}: ${previous} and ${name} both claim image "${stem}"`);
    byStem.set(stem, join(dir, name));
  }
  if (byStem.size === 0) throw new EvaluationError(`${role} folder ${dir}: no images (${IMAGE_EXTENSIONS.join(' ')})`);
  return byStem;
}

interface Pair {
  stem: string;
  ir: string;
  vi: string;
  fused: Map<string, string>;
}

/** Matches sources and fused images by name; every mismatch is a problem. */
function pairFiles(options: EvaluateOptions, problem: (message: string) => void): Pair[] {
  const ir = listImages(options.irDir, 'infrared');
  const vi = listImages(options.viDir, 'visible');
  const fusedByMethod = options.fused.map(({ method, dir }) => ({ method, files: listImages(dir, `fused (${method})`) }));
  for (const [stem, path] of ir) if (!vi.has(stem)) problem(`${path}: missing pair, no visible image "${stem}" in ${options.viDir}`);
  for (const [stem, path] of vi) if (!ir.has(stem)) problem(`${path}: missing pair, no infrared image "${stem}" in ${options.irDir}`);
  for (const { files } of fusedByMethod)
    for (const [stem, path] of files)
      if (!ir.has(stem) || !vi.has(stem)) problem(`${path}: no source pair "${stem}" in ${options.irDir} and ${options.viDir}`);

  const pairs: Pair[] = [];
  for (const [stem, irPath] of ir) {
    const viPath = vi.get(stem);
    if (!viPath) continue;
    const fused = new Map<string, string>();
    for (const { method, files } of fusedByMethod) {
      const path = files.get(stem);
      if (path) fused.set(method, path);
      else problem(`${join(options.fused.find((f) => f.method === method)!.dir, stem)}.*: method ${method} has no fused image for "${stem}"`);
    }
    pairs.push({ stem, ir: irPath, vi: viPath, fused });
  }
  return pairs;
}

function sameSize(a: Image, b: Image): boolean {
  return a.width === b.width && a.height === b.height;
}

async function readChecked(path: string): Promise<Image> {
  try {
    return await readImage(path);
  } catch (e) {
    throw new EvaluationError((e as Error).message);
  }
}

function summarise(method: string, perImage: ImageScore[]): MethodSummary {
  const mean = {} as MetricValues;
  const std = {} as MetricValues;
  for (const name of METRIC_NAMES) {
    const values = perImage.map((s) => s.values[name]);
    const m = values.reduce((x, y) => x + y, 0) / values.length;
    mean[name] = m;
    std[name] = Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / values.length);
  }
  return { method, count: perImage.length, mean, std, perImage };
}

/** Scores one pair's fused images, in this thread or on the worker pool. */
type PairScorer = (ir: Image, vi: Image, fused: Image[]) => Promise<MetricValues[]>;

/** Worker threads to use by default: one per core, at most 8. */
export function defaultWorkers(): number {
  return Math.min(8, availableParallelism());
}

export async function evaluate(options: EvaluateOptions): Promise<MethodSummary[]> {
  const methods = options.fused.map((f) => f.method);
  if (methods.length === 0) throw new EvaluationError('no fused folder given');
  const duplicate = methods.find((m, i) => methods.indexOf(m) !== i);
  if (duplicate) throw new EvaluationError(`method name "${duplicate}" is given twice`);

  const problem = (message: string) => {
    if (!options.skipBad) throw new EvaluationError(message);
    options.onSkip?.(message);
  };
  const pairs = pairFiles(options, problem);
  const workers = Math.min(options.workers ?? defaultWorkers(), pairs.length);
  const pool = workers > 1 ? new ScorePool(options.protocol.name, workers) : undefined;
  const scorePair: PairScorer = pool
    ? (ir, vi, fused) => pool.score(ir, vi, fused)
    : async (ir, vi, fused) => fused.map((f) => options.protocol.score(f, ir, vi));
  try {
    const perPair = await scorePairs(pairs, scorePair, Math.max(1, 2 * workers), problem, options.onProgress);
    const scores = new Map<string, ImageScore[]>(methods.map((m) => [m, []]));
    for (const pairScores of perPair) for (const { method, score } of pairScores) scores.get(method)!.push(score);
    const empty = methods.find((m) => scores.get(m)!.length === 0);
    if (empty) throw new EvaluationError(`method ${empty}: no image could be scored`);
    return methods.map((m) => summarise(m, scores.get(m)!));
  } finally {
    await pool?.close();
  }
}

/** The fused images of a pair that can be scored, read and checked against the sources. */
async function readFused(pair: Pair, ir: Image, problem: (message: string) => void): Promise<Array<{ method: string; path: string; image: Image }>> {
  const fused = [];
  for (const [method, path] of pair.fused) {
    let image: Image;
    try {
      image = await readChecked(path);
    } catch (e) {
      problem((e as Error).message);
      continue;
    }
    if (!sameSize(image, ir)) problem(`${path}: size ${image.width}×${image.height} differs from its sources ${pair.ir} (${ir.width}×${ir.height})`);
    else fused.push({ method, path, image });
  }
  return fused;
}

/**
 * Reads and checks the pairs in order and scores them with up to `inFlight` pairs at a time; the scores come
 * back in pair order whatever order they finish in.
 */
async function scorePairs(
  pairs: Pair[],
  scorePair: PairScorer,
  inFlight: number,
  problem: (message: string) => void,
  onProgress?: (done: number, total: number) => void,
): Promise<Array<Array<{ method: string; score: ImageScore }>>> {
  const results: Array<Array<{ method: string; score: ImageScore }>> = pairs.map(() => []);
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let done = 0;
  const finished = () => onProgress?.(++done, pairs.length);
  onProgress?.(0, pairs.length);
  // Read the next pair's sources while the current one is checked.
  const load = (pair: Pair) => Promise.allSettled([pair.ir, pair.vi].map(readChecked));
  let next = pairs.length ? load(pairs[0]) : undefined;
  try {
    for (const [index, pair] of pairs.entries()) {
      const [irResult, viResult] = await next!;
      next = index + 1 < pairs.length ? load(pairs[index + 1]) : undefined;
      const sources = checkSources(pair, irResult, viResult, problem);
      const fused = sources ? await readFused(pair, sources[0], problem) : [];
      if (!sources || fused.length === 0) {
        finished();
        continue;
      }
      const job: Promise<void> = scorePair(sources[0], sources[1], fused.map((f) => f.image))
        .then(
          (values) => {
            results[index] = fused.map(({ method, path }, k) => ({ method, score: { image: parse(path).base, values: values[k] } }));
            finished();
          },
          (error: unknown) => void (failure ??= { error }),
        )
        .finally(() => running.delete(job));
      running.add(job);
      if (running.size >= inFlight) await Promise.race(running);
      if (failure) throw failure.error;
    }
    await Promise.all(running);
    if (failure) throw failure.error;
  } finally {
    // On a failure, let the other jobs settle before the pool closes under them.
    await Promise.allSettled(running);
  }
  return results;
}

/** The sources of a pair if both were read and fit together; otherwise the problem is reported. */
function checkSources(
  pair: Pair,
  irResult: PromiseSettledResult<Image>,
  viResult: PromiseSettledResult<Image>,
  problem: (message: string) => void,
): [Image, Image] | undefined {
  if (irResult.status === 'rejected' || viResult.status === 'rejected') {
    problem(((irResult.status === 'rejected' ? irResult : viResult) as PromiseRejectedResult).reason.message);
    return undefined;
  }
  const [ir, vi] = [irResult.value, viResult.value];
  if (!sameSize(ir, vi)) {
    problem(`${pair.vi}: size ${vi.width}×${vi.height} differs from its infrared source ${pair.ir} (${ir.width}×${ir.height})`);
    return undefined;
  }
  if (Math.min(ir.width, ir.height) < VIF_MIN_SIDE) {
    problem(`${pair.ir}: ${ir.width}×${ir.height} is too small to score: VIF's windows need at least ${VIF_MIN_SIDE}×${VIF_MIN_SIDE} pixels`);
    return undefined;
  }
  return [ir, vi];
}

/** JSON form: method → per-metric means (plain numbers), plus `std`, `images` and, if asked, `perImage`. */
export function summaryToJson(summaries: MethodSummary[], perImage: boolean): Record<string, unknown> {
  return Object.fromEntries(
    summaries.map((s) => [
      s.method,
      {
        ...s.mean,
        std: s.std,
        images: s.count,
        ...(perImage ? { perImage: Object.fromEntries(s.perImage.map((p) => [p.image, p.values])) } : {}),
      },
    ]),
  );
}
