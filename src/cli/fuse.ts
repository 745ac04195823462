/**
 * `moefusion fuse --ir PATH --vi PATH --out PATH [--color] [--compare FILE|DIR] [--weights FILE]`
 * PATH: two files and an output file, or two folders (pairs matched by file name) and an output folder.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { Fuser } from '../model/fuser.ts';
import { readImage, writeImage } from '../io/image.ts';
import { toGray01, recolor, to8bit } from '../io/color.ts';
import type { Image as RawImage } from '../io/image.ts';
import { sideBySide } from '../io/plot.ts';
import { matchPairsInFolders } from '../io/dataset.ts';
import { ensureWritableDir } from '../io/atomic.ts';
import { UserError } from './errors.ts';
import { createProgress } from './progress.ts';
import { DEFAULT_WEIGHTS } from './defaults.ts';

interface FuseArgs {
  ir: string;
  vi: string;
  out: string;
  color?: boolean;
  compare?: string;
  weights: string;
  attention: 'auto' | 'detector' | 'none';
}

export interface FusedPicture {
  gray: Uint8Array;
  rgb: Uint8Array | null;
}

/** Fuses one decoded pair; colour output uses the visible image's chroma. */
export async function fusePair(
  fuser: Fuser,
  ir: RawImage,
  vi: RawImage,
  color: boolean,
  names: { ir: string; vi: string },
  attention: 'detector' | 'none' = 'none',
): Promise<FusedPicture> {
  if (ir.width !== vi.width || ir.height !== vi.height)
    throw new UserError(`${names.ir} is ${ir.width}×${ir.height} but ${names.vi} is ${vi.width}×${vi.height}: a pair must have one size`);
  const out = await fuser.fuse(
    { width: ir.width, height: ir.height, data: toGray01(ir, 'first') },
    { width: vi.width, height: vi.height, data: toGray01(vi, 'luma') },
    { attention: attention === 'detector' ? 'detector' : undefined },
  );
  const gray = to8bit(out.data);
  return { gray, rgb: color && vi.channels >= 3 ? recolor(out.data, vi) : null };
}

async function writeResult(path: string, pic: FusedPicture, w: number, h: number): Promise<void> {
  if (pic.rgb) await writeImage(path, pic.rgb, w, h, 3);
  else await writeImage(path, pic.gray, w, h, 1);
}

async function writeComparison(path: string, ir: RawImage, vi: RawImage, pic: FusedPicture): Promise<void> {
  const as8 = (img: RawImage) => {
    const g = to8bit(toGray01(img, img.channels >= 3 ? 'luma' : 'first'));
    return { width: img.width, height: img.height, channels: 1 as const, data: g };
  };
  const fused = pic.rgb
    ? { width: vi.width, height: vi.height, channels: 3 as const, data: pic.rgb }
    : { width: vi.width, height: vi.height, channels: 1 as const, data: pic.gray };
  const strip = sideBySide([as8(ir), as8(vi), fused]);
  await writeImage(path, strip.data, strip.width, strip.height, 3);
}

/** A pair's output file: its name with the visible image's extension, PNG instead of JPEG (no second lossy pass). */
function outputName(name: string, visible: string): string {
  const ext = extname(visible);
  return name + (['.jpg', '.jpeg', ''].includes(ext.toLowerCase()) ? '.png' : ext);
}

export async function runFuse(a: FuseArgs): Promise<void> {
  for (const [flag, p] of [['--ir', a.ir], ['--vi', a.vi]] as const)
    if (!existsSync(p)) throw new UserError(`${flag} ${p}: no such file or folder`);
  if (!existsSync(a.weights)) throw new UserError(`--weights ${a.weights}: no such file`);
  const folders = statSync(a.ir).isDirectory();
  if (folders !== statSync(a.vi).isDirectory()) throw new UserError('--ir and --vi must both be files or both be folders');

  // Check the outputs before any work: a file's folder is created, a folder must be writable.
  ensureWritableDir(folders ? a.out : dirname(resolve(a.out)), '--out');
  if (a.compare) ensureWritableDir(folders ? a.compare : dirname(resolve(a.compare)), '--compare');
  const pairs = folders ? matchPairsInFolders(a.ir, a.vi) : [];
  if (!['auto', 'detector', 'none'].includes(a.attention)) throw new UserError(`--attention ${a.attention}: expected auto, detector or none`);
  const fuser = await Fuser.create({ weights: a.weights });
  try {
    if (a.attention === 'detector' && !fuser.detector)
      throw new UserError(`--attention detector: ${a.weights} carries no detector (train one with \`moefusion train --attention detector\`)`);
    const attention = a.attention === 'none' || !fuser.detector ? 'none' : 'detector';
    if (!folders) {
      const [ir, vi] = [await readImage(a.ir), await readImage(a.vi)];
      const pic = await fusePair(fuser, ir, vi, !!a.color, { ir: a.ir, vi: a.vi }, attention);
      await writeResult(a.out, pic, ir.width, ir.height);
      if (a.compare) await writeComparison(a.compare, ir, vi, pic);
      console.log(`fused ${basename(a.ir)} + ${basename(a.vi)} → ${a.out}`);
      return;
    }
    const bar = createProgress(pairs.length, 'fusing');
    for (const p of pairs) {
      const [ir, vi] = [await readImage(p.ir), await readImage(p.vi)];
      const pic = await fusePair(fuser, ir, vi, !!a.color, { ir: p.ir, vi: p.vi }, attention);
      await writeResult(join(a.out, outputName(p.name, p.vi)), pic, ir.width, ir.height);
      if (a.compare) await writeComparison(join(a.compare, `${p.name}.png`), ir, vi, pic);
      bar.tick();
    }
    bar.stop();
    console.log(`fused ${pairs.length} pairs → ${a.out}`);
  } finally {
    fuser.dispose();
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
    .option('--attention <mode>', "attention map: detector (the weights' detectors), none (0.5), or auto (detector when the weights carry one)", 'auto')
    .action(async (opts: FuseArgs) => runFuse(opts));
}
