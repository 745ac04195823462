/**
 * The inputs `fuse` and `detect` share, checked before the GPU starts: the pairs that --ir and --vi name (two files,
 * or two folders matched by file name) and the weights file (`export`'s too); once the GPU is up, the pairs' sizes
 * from their headers.
 */
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { imageSize } from '../io/image.ts';
import { matchPairsInFolders, type ImagePair } from '../io/dataset.ts';
import { UserError } from './errors.ts';

/** The pairs of --ir and --vi: one pair of files (named after the visible image), or the pairs of two folders. */
export function pairsOf(ir: string, vi: string): { pairs: ImagePair[]; folders: boolean } {
  for (const [flag, p] of [['--ir', ir], ['--vi', vi]] as const) if (!existsSync(p)) throw new UserError(`${flag} ${p}: no such file or folder`);
  const folders = statSync(ir).isDirectory();
  if (folders !== statSync(vi).isDirectory()) throw new UserError('--ir and --vi must both be files or both be folders');
  return { pairs: folders ? matchPairsInFolders(ir, vi) : [{ name: basename(vi).replace(/\.[^.]*$/, ''), ir, vi }], folders };
}

export function checkWeightsFile(path: string): void {
  if (!existsSync(path)) throw new UserError(`--weights ${path}: no such file`);
  if (statSync(path).isDirectory()) throw new UserError(`--weights ${path}: is a folder; expected a .safetensors file`);
}

/**
 * Each pair's size from the image headers, before any decoding or output: one size per pair and, with `fits` (the
 * adapter's check), within the GPU's limits; an error names the infrared image.
 */
export async function checkPairSizes(pairs: ImagePair[], fits?: (width: number, height: number) => void): Promise<void> {
  for (const p of pairs) {
    const [si, sv] = [await imageSize(p.ir), await imageSize(p.vi)];
    if (si.width !== sv.width || si.height !== sv.height)
      throw new UserError(`${p.ir} is ${si.width}×${si.height} but ${p.vi} is ${sv.width}×${sv.height}: a pair must have one size`);
    try {
      fits?.(si.width, si.height);
    } catch (e) {
      (e as Error).message = `${p.ir}: ${(e as Error).message}`;
      throw e;
    }
  }
}
