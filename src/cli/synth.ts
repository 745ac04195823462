/**
 * `moefusion synth --out DIR [--count 200] [--size 128x128] [--seed 0] [--max-objects 5]`: writes a synthetic
 * infrared/visible dataset with object boxes in M3FD's layout (Ir/, Vis/, Annotation/), for tests and quick
 * detector experiments. See src/train/synthetic-scenes.ts.
 */
import { Command } from 'commander';
import { SYNTHETIC_FOLDERS, syntheticName, writeSyntheticDataset } from '../train/synthetic-scenes.ts';
import { UsageError } from './errors.ts';
import { checkOutputs } from './outputs.ts';
import { createProgress, type Progress } from './progress.ts';

interface SynthArgs {
  out: string;
  count: string;
  size: string;
  seed: string;
  maxObjects: string;
}

function integer(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${name} ${v}: expected an integer${min > 0 ? ' ≥ ' + min : min === 0 ? ' ≥ 0' : ''}`);
  return n;
}

/** "WIDTHxHEIGHT" (or one number for a square). */
function parseSize(v: string): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  const width = m ? Number(m[1]) : NaN;
  const height = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(width >= 16 && height >= 16 && width <= 8192 && height <= 8192))
    throw new UsageError(`--size ${v}: expected WIDTHxHEIGHT with each side from 16 to 8192, e.g. 128x128`);
  return { width, height };
}

export async function runSynth(a: SynthArgs): Promise<void> {
  const count = integer('--count', a.count, 1);
  const seed = integer('--seed', a.seed, Number.MIN_SAFE_INTEGER);
  const maxObjects = integer('--max-objects', a.maxObjects, 1);
  const { width, height } = parseSize(a.size);
  checkOutputs([{ flag: '--out', path: a.out, kind: 'folder' }], []);
  const started = Date.now();
  let bar: Progress | undefined; // started with the first image, so that a refused folder prints no progress
  let summary;
  try {
    summary = await writeSyntheticDataset(a.out, { count, width, height, seed, maxObjects, onImage: () => (bar ??= createProgress(count, 'synth')).tick() });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message); // a value out of range (the options, checked by the writer)
    throw e;
  } finally {
    bar?.stop();
  }
  const objects = Object.entries(summary.objects);
  const total = objects.reduce((s, [, n]) => s + n, 0);
  const last = syntheticName(count - 1);
  process.stdout.write(
    [
      `wrote ${count} synthetic pair(s) of ${width}×${height} (seed ${seed}) to ${a.out} in ${((Date.now() - started) / 1000).toFixed(1)} s:`,
      `  ${SYNTHETIC_FOLDERS.ir}/00000.png … ${last}.png (infrared), ${SYNTHETIC_FOLDERS.vis}/ (visible), ${SYNTHETIC_FOLDERS.labels}/*.xml (VOC boxes)`,
      `  ${total} objects: ${objects.map(([c, n]) => `${n} ${c}`).join(', ')}`,
    ].join('\n') + '\n',
  );
}

export function synthCommand(): Command {
  return new Command('synth')
    .description('write a synthetic infrared/visible dataset with object boxes (M3FD layout: Ir/, Vis/, Annotation/)')
    .requiredOption('--out <dir>', 'a new or empty folder')
    .option('--count <n>', 'number of image pairs', '200')
    .option('--size <WxH>', 'image size WIDTHxHEIGHT', '128x128')
    .option('--seed <n>', 'random seed (image k depends only on the seed and k)', '0')
    .option('--max-objects <n>', 'at most this many objects per image (at least 1)', '5')
    .action(async (a: SynthArgs) => runSynth(a));
}
