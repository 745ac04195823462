/**
 * Scores folders of fused images against infrared/visible source folders under one protocol: pairs files by
 * name, checks every input, and summarises each method by mean and (population) standard deviation.
 * Each image pair is scored independently of the others; the sources of a pair are read once and their
 * filtered maps are shared by all methods (see memoizeByObject).
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join, parse } from 'node:path';
import { readImage, type Image } from '../io/image.ts';
import { METRIC_NAMES, type MetricValues, type Protocol } from './protocols.ts';

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
  const scores = new Map<string, ImageScore[]>(methods.map((m) => [m, []]));
  // Read the next pair's files while the current one is scored.
  const load = (pair: Pair) => Promise.allSettled([pair.ir, pair.vi].map(readChecked));
  let next = pairs.length ? load(pairs[0]) : undefined;
  for (const [index, pair] of pairs.entries()) {
    const [irResult, viResult] = await next!;
    next = index + 1 < pairs.length ? load(pairs[index + 1]) : undefined;
    options.onProgress?.(index, pairs.length);
    if (irResult.status === 'rejected' || viResult.status === 'rejected') {
      problem(((irResult.status === 'rejected' ? irResult : viResult) as PromiseRejectedResult).reason.message);
      continue;
    }
    const [ir, vi] = [irResult.value, viResult.value];
    if (!sameSize(ir, vi)) {
      problem(`${pair.vi}: size ${vi.width}×${vi.height} differs from its infrared source ${pair.ir} (${ir.width}×${ir.height})`);
      continue;
    }
    for (const [method, path] of pair.fused) {
      let fused: Image;
      try {
        fused = await readChecked(path);
      } catch (e) {
        problem((e as Error).message);
        continue;
      }
      if (!sameSize(fused, ir)) {
        problem(`${path}: size ${fused.width}×${fused.height} differs from its sources ${pair.ir} (${ir.width}×${ir.height})`);
        continue;
      }
      scores.get(method)!.push({ image: parse(path).base, values: options.protocol.score(fused, ir, vi) });
    }
  }
  options.onProgress?.(pairs.length, pairs.length);
  const empty = methods.find((m) => scores.get(m)!.length === 0);
  if (empty) throw new EvaluationError(`method ${empty}: no image could be scored`);
  return methods.map((m) => summarise(m, scores.get(m)!));
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
