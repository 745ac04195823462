/**
 * `moefusion fuse --ir PATH --vi PATH --out PATH [--color] [--compare FILE|DIR] [--weights FILE] [--depth 8|16]
 *                 [--shard I/N] [--skip-existing] [--json] [--quiet]`
 * PATH: two files and an output file, or two folders (pairs matched by file name) and an output folder.
 * Everything is checked before any work (paths, extensions, sizes from the image headers against the adapter's
 * limits); outputs appear atomically; an input is never overwritten.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { Command, Option } from 'commander';
import { Fuser, checkFits, fuseClassic } from '../model/fuser.ts';
import { FORWARD_STAGES } from '../model/fusion-net.ts';
import { ATTENTION_CHOICES, type AttentionChoice } from '../model/attention.ts';
import { CLASSIC_METHODS, type ClassicMethod } from '../model/classic-fusion.ts';
import { DEFAULT_RANGE, OUTPUT_RANGES, type OutputRange } from '../io/output-range.ts';
import { decodeImage, formatOf, ImageError, readImage, writeImage } from '../io/image.ts';
import { readFile } from 'node:fs/promises';
import { toGray01, to8bit } from '../io/color.ts';
import type { Image } from '../io/image-types.ts';
import type { FusedImage } from '../io/fused-image.ts';
import { sideBySide } from '../io/plot.ts';
import { InputError } from '../io/pixels.ts';
import { UserError, UsageError } from './errors.ts';
import { checkOutputs } from './outputs.ts';
import { checkPairSizes, checkWeightsFile, pairsOf } from './inputs.ts';
import { createProgress } from './progress.ts';
import { DEFAULT_WEIGHTS } from './defaults.ts';

const METHODS = ['network', ...CLASSIC_METHODS] as const;
const DEPTHS = ['8', '16'] as const;

/** An option taking one of `values` (listed in the help); another value is a usage error naming the flag. */
function choiceOption<T extends string>(flags: string, help: string, values: readonly T[], fallback: T): Option {
  const option = new Option(flags, help).choices(values).default(fallback);
  return option.argParser((v: string) => {
    if (!values.includes(v as T)) throw new UsageError(`${option.long} ${v}: expected one of ${values.join(', ')}`);
    return v as T;
  });
}

interface FuseArgs {
  ir: string;
  vi: string;
  out: string;
  color?: boolean;
  compare?: string;
  weights: string;
  attention: AttentionChoice;
  method: (typeof METHODS)[number];
  range: OutputRange;
  depth: (typeof DEPTHS)[number];
  shard?: string;
  skipExisting?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** The shard of `--shard I/N`: pair names are split by a hash of the name, so a name's shard never changes. */
export function parseShard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || count < 1 || index >= count) throw new UsageError(`--shard ${v}: expected I/N with 0 ≤ I < N, e.g. 0/4`);
  return { index, count };
}

/** FNV-1a of the name: a stable shard for each pair, whatever other files the folder holds. */
export function shardOf(name: string, count: number): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h % count;
}

/** A pair's output file: its name with the visible image's extension, PNG instead of JPEG (no second lossy pass). */
function outputName(name: string, visible: string, depth: 8 | 16): string {
  const ext = extname(visible).toLowerCase();
  const keep = ['.png', '.tif', '.tiff', '.bmp', '.webp'].includes(ext) && (depth === 8 || ext === '.png' || ext.startsWith('.tif'));
  return name + (keep ? extname(visible) : '.png');
}

/** A complete, readable image at `path` (--skip-existing redoes missing, truncated or unreadable outputs). */
async function isComplete(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  try {
    await decodeImage(await readFile(path), path);
    return true;
  } catch {
    return false;
  }
}

interface Job {
  name: string;
  ir: string;
  vi: string;
  out: string;
  compare: string | null;
}

async function writeComparison(path: string, ir: Image, vi: Image, fused: FusedImage): Promise<void> {
  const as8 = (img: Image) => ({ width: img.width, height: img.height, channels: 1 as const, data: to8bit(toGray01(img, img.channels >= 3 ? 'luma' : 'first')) });
  const strip = sideBySide([as8(ir), as8(vi), { width: fused.width, height: fused.height, channels: fused.channels, data: fused.pixels(8) as Uint8Array }]);
  await writeImage(path, strip.data, strip.width, strip.height, 3);
}

/** Every check that needs no GPU: paths, extensions, collisions with inputs. Returns the jobs. */
function plan(a: FuseArgs, depth: 8 | 16): { jobs: Job[]; folders: boolean } {
  const { pairs: all, folders } = pairsOf(a.ir, a.vi);
  if (a.method === 'network') checkWeightsFile(a.weights);
  const inputs = [{ flag: '--ir', path: a.ir }, { flag: '--vi', path: a.vi }, ...(a.method === 'network' ? [{ flag: '--weights', path: a.weights }] : [])];
  const checkImageOut = (flag: string, path: string) => {
    if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${flag} ${path}: is a folder; expected an image file name`);
    try {
      formatOf(path);
    } catch (e) {
      throw new UserError(`${flag} ${path}: ${(e as Error).message.replace(`${path}: `, '')}`);
    }
    if (depth === 16 && !/\.(png|tiff?)$/i.test(path)) throw new UserError(`${flag} ${path}: --depth 16 needs a .png or .tif output`);
  };
  if (!folders) {
    if (a.shard) throw new UsageError(`--shard ${a.shard}: --ir and --vi are files; --shard splits the pairs of two folders`);
    for (const [flag, p] of [['--out', a.out], ['--compare', a.compare]] as const) if (p) checkImageOut(flag, p);
    checkOutputs([{ flag: '--out', path: a.out, kind: 'file' }, a.compare && { flag: '--compare', path: a.compare, kind: 'file' }], inputs);
    return { jobs: [{ ...all[0], out: a.out, compare: a.compare ?? null }], folders };
  }
  const shard = a.shard ? parseShard(a.shard) : null;
  const pairs = shard ? all.filter((p) => shardOf(p.name, shard.count) === shard.index) : all;
  const jobs = pairs.map((p) => ({ name: p.name, ir: p.ir, vi: p.vi, out: join(a.out, outputName(p.name, p.vi, depth)), compare: a.compare ? join(a.compare, `${p.name}.png`) : null }));
  // Output folders are created with their first image (atomic.ts).
  checkOutputs(
    [
      { flag: '--out', path: a.out, kind: 'folder', files: jobs.map((j) => basename(j.out)) },
      a.compare && { flag: '--compare', path: a.compare, kind: 'folder', files: jobs.map((j) => basename(j.compare!)) },
    ],
    [...inputs, ...pairs.flatMap((p) => [{ flag: '--ir', path: p.ir }, { flag: '--vi', path: p.vi }])],
  );
  return { jobs, folders };
}

export interface FuseSummary {
  pairs: number;
  fused: number;
  skipped: number;
  seconds: number;
  secondsPerImage: number | null;
  outputs: string[];
  /** Folders: the pairs that could not be fused (an image that does not decode…); the command then exits 1. */
  failed: Array<{ name: string; error: string }>;
}

/** One line for the pairs of a folder that failed, the first few named. */
function failureReport(failed: FuseSummary['failed'], of: number, out: string): string {
  const shown = failed.slice(0, 3).map((f) => f.error).join('; ');
  const more = failed.length > 3 ? `; and ${failed.length - 3} more` : '';
  const others = failed.length < of ? ` (the others are in ${out}; rerun with --skip-existing once fixed)` : '';
  return `${failed.length} of ${of} pairs could not be fused${others}: ${shown}${more}`;
}

export async function runFuse(a: FuseArgs): Promise<FuseSummary> {
  const started = performance.now();
  const depth = Number(a.depth) as 8 | 16;
  const { jobs, folders } = plan(a, depth);
  const say = (line: string) => {
    if (!a.quiet && !a.json) console.log(line);
  };

  // The training-free methods need no weights and no GPU.
  const fuser = a.method === 'network' ? await Fuser.create({ weights: a.weights }) : null;
  try {
    if (fuser && a.attention === 'detector' && !fuser.detector)
      throw new UserError(`--attention detector: ${a.weights} carries no detector (train one with \`moefusion train --attention detector\`)`);
    await checkPairSizes(jobs, fuser ? checkFits : undefined);

    const todo: Job[] = [];
    for (const j of jobs) if (!(a.skipExisting && (await isComplete(j.out)) && (!j.compare || (await isComplete(j.compare))))) todo.push(j);
    const bar = folders ? createProgress(todo.length, 'fusing', { quiet: a.quiet || a.json }) : null;
    const fuseStarted = performance.now();
    const failed: FuseSummary['failed'] = [];
    const fusePair = async (j: Job) => {
      const [ir, vi] = [await readImage(j.ir), await readImage(j.vi)];
      const stages = folders ? null : createProgress(FORWARD_STAGES.length, 'fusing', { quiet: a.quiet || a.json || ir.width * ir.height < 1 << 20 });
      const fused = fuser
        ? await fuser.fuse(ir, vi, {
            color: !!a.color,
            attention: a.attention,
            range: a.range,
            onStage: stages ? (stage, done) => stages.update(done, { stage }) : undefined,
          })
        : await fuseClassic(ir, vi, { method: a.method as ClassicMethod, color: !!a.color, range: a.range });
      stages?.stop();
      await writeImage(j.out, fused.pixels(depth), fused.width, fused.height, fused.channels);
      if (j.compare) await writeComparison(j.compare, ir, vi, fused);
    };
    for (const j of todo) {
      try {
        await fusePair(j);
      } catch (e) {
        // In a folder, a pair whose images cannot be used (a truncated file passes the header check) does not stop
        // the others; anything else (the GPU, the disk) does.
        if (!folders || !(e instanceof ImageError || e instanceof InputError)) throw e;
        failed.push({ name: j.name, error: (e as Error).message });
      }
      bar?.tick();
    }
    bar?.stop();
    const seconds = (performance.now() - started) / 1000;
    const done = todo.filter((j) => !failed.some((f) => f.name === j.name));
    const perImage = done.length ? (performance.now() - fuseStarted) / 1000 / todo.length : null;
    const summary: FuseSummary = { pairs: jobs.length, fused: done.length, skipped: jobs.length - todo.length, seconds, secondsPerImage: perImage, outputs: done.map((j) => j.out), failed };
    const skipped = summary.skipped ? `, skipped ${summary.skipped} already done` : '';
    say(
      folders
        ? `fused ${done.length} of ${jobs.length} pairs${skipped} in ${seconds.toFixed(1)} s (${perImage === null ? '-' : perImage.toFixed(2)} s per image) → ${a.out}`
        : `fused ${a.ir} + ${a.vi} in ${seconds.toFixed(1)} s → ${a.out}`,
    );
    if (a.json) console.log(JSON.stringify(summary));
    if (failed.length) throw new UserError(failureReport(failed, todo.length, a.out));
    return summary;
  } finally {
    fuser?.dispose();
  }
}

export function fuseCommand(): Command {
  return new Command('fuse')
    .description('fuse infrared/visible pairs: two files, or two folders matched by file name')
    .requiredOption('--ir <path>', 'infrared image or folder')
    .requiredOption('--vi <path>', 'visible image or folder')
    .requiredOption('--out <path>', 'fused image (file) or output folder')
    .option('--color', 'colour output: the fused image as luma with the visible chroma (YCbCr)')
    .option('--compare <path>', 'also write an IR | visible | fused picture (file, or folder for folders)')
    .option('--weights <file>', 'weights (safetensors)', DEFAULT_WEIGHTS)
    .addOption(choiceOption('--attention <mode>', "attention map: detector (the weights' detectors), saliency (the infrared image's brightness saliency), none (0.5), or auto (what the weights were trained with)", ATTENTION_CHOICES, 'auto'))
    .addOption(choiceOption('--method <method>', 'network (MoE-Fusion with --weights), or a training-free baseline: max (max(ir, vis)) or multiscale (per Gaussian scale the stronger detail, the brighter base)', METHODS, 'network'))
    .addOption(choiceOption('--range <range>', "output range: stretch (clamp, then the image's min..max to full range, as the peers save) or clamp (to [0, 1], as the reference)", OUTPUT_RANGES, DEFAULT_RANGE))
    .addOption(choiceOption('--depth <bits>', 'output bits per channel (16: PNG and TIFF only)', DEPTHS, '8'))
    .option('--shard <I/N>', 'folders: fuse only shard I of N (a stable split by file name), for job arrays')
    .option('--skip-existing', 'folders: skip pairs whose output is already a complete image (finish an interrupted run)')
    .option('--json', 'print a JSON summary (pairs, fused, skipped, seconds, outputs) on stdout, nothing else')
    .option('--quiet', 'print nothing but errors')
    .action(async (opts: FuseArgs) => {
      await runFuse(opts);
    });
}
