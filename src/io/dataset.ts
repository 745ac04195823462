/**
 * Infrared/visible datasets on disk. Pairs are matched by file stem (name without extension, so `a.png` pairs
 * with `a.jpg`). Recognised layouts, folder names case-insensitive:
 *   ROOT/ir + ROOT/vi            (this project, MSRS, RoadScene, TNO)     ROOT/Ir + ROOT/Vis   (M3FD)
 *   ROOT/infrared + ROOT/visible (LLVIP, with train/ and test/ inside)   ROOT/train/ir + ROOT/train/vi   (MSRS)
 * A split (train/test) sits either above the modality folders or inside them. Boxes, when present, are in a
 * `labels/`, `Annotations/` or `Annotation/` folder next to the modality folders or at ROOT (see boxes.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import { openBoxSource, stemOf, type BoxSource } from './boxes.ts';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'];
const IR_NAMES = ['ir', 'infrared'];
const VI_NAMES = ['vi', 'vis', 'visible'];
const LABEL_NAMES = ['labels', 'annotations', 'annotation'];
const SHOWN = 5; // names listed in an error before "and N more"

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

export interface ImagePair {
  /** The shared file stem. */
  name: string;
  ir: string;
  vi: string;
}

export interface Dataset {
  root: string;
  /** The split folder used ('train', 'test', …), if the dataset has splits. */
  split?: string;
  irDir: string;
  viDir: string;
  pairs: ImagePair[];
  /** Boxes, when the dataset has a labels folder. */
  boxes: BoxSource | null;
}

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name).sort(byName);
}

/** The subfolder of dir whose lower-cased name is one of names (in the order of names), or null. */
function childDir(dir: string, names: string[]): string | null {
  const present = subdirs(dir);
  for (const want of names) {
    const hit = present.find((n) => n.toLowerCase() === want);
    if (hit) return join(dir, hit);
  }
  return null;
}

function listSample(names: string[]): string {
  return names.slice(0, SHOWN).join(', ') + (names.length > SHOWN ? ` and ${names.length - SHOWN} more` : '');
}

/** The images in a folder, keyed by stem. Errors on a missing or empty folder and on two files with one stem. */
export function listImages(dir: string): Map<string, string> {
  if (!existsSync(dir)) throw new DatasetError(`${dir}: no such folder`);
  if (!statSync(dir).isDirectory()) throw new DatasetError(`${dir}: not a folder`);
  const files = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isFile() && !d.name.startsWith('.')).map((d) => d.name).sort(byName);
  const images = new Map<string, string>();
  for (const f of files) {
    if (!IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())) continue;
    const stem = stemOf(f);
    const other = images.get(stem);
    if (other) throw new DatasetError(`${dir}: ${basename(other)} and ${f} have the same name; keep one`);
    images.set(stem, join(dir, f));
  }
  if (images.size === 0) {
    const what = files.length ? `only other files (${listSample(files)})` : 'it is empty';
    throw new DatasetError(`${dir}: no images (${IMAGE_EXTENSIONS.join(', ')}): ${what}`);
  }
  return images;
}

/** Pairs the images of two folders by stem, sorted by name. Every image must have a partner. */
export function matchPairsInFolders(irDir: string, viDir: string): ImagePair[] {
  const ir = listImages(irDir);
  const vi = listImages(viDir);
  const irOnly = [...ir.keys()].filter((s) => !vi.has(s));
  const viOnly = [...vi.keys()].filter((s) => !ir.has(s));
  const problems: string[] = [];
  if (irOnly.length) problems.push(`${irOnly.length} infrared image(s) have no visible image of the same name in ${viDir}: ${listSample(irOnly.map((s) => basename(ir.get(s)!)))}`);
  if (viOnly.length) problems.push(`${viOnly.length} visible image(s) have no infrared image of the same name in ${irDir}: ${listSample(viOnly.map((s) => basename(vi.get(s)!)))}`);
  if (problems.length) throw new DatasetError(`unmatched pairs: ${problems.join('; ')}`);
  return [...ir.keys()].sort(byName).map((name) => ({ name, ir: ir.get(name)!, vi: vi.get(name)! }));
}

interface Located {
  irDir: string;
  viDir: string;
  split?: string;
}

function modalityDirs(dir: string): { ir: string; vi: string } | null {
  const ir = childDir(dir, IR_NAMES);
  const vi = childDir(dir, VI_NAMES);
  return ir && vi ? { ir, vi } : null;
}

function chooseSplit(root: string, available: string[], split: string | undefined): string {
  if (split) {
    const hit = available.find((s) => s.toLowerCase() === split.toLowerCase());
    if (!hit) throw new DatasetError(`${root}: no split "${split}"; it has ${available.join(', ')}`);
    return hit;
  }
  if (available.length === 1) return available[0];
  throw new DatasetError(`${root} has the splits ${available.join(', ')}: choose one (e.g. --split ${available[0]})`);
}

/** Finds the infrared and visible folders of a dataset root (see the layouts above). */
export function locateDataset(root: string, split?: string): Located {
  if (!existsSync(root)) throw new DatasetError(`${root}: no such folder`);
  if (!statSync(root).isDirectory()) throw new DatasetError(`${root}: not a folder`);
  const direct = modalityDirs(root);
  if (direct) {
    // LLVIP: the split is inside the modality folders (infrared/train, visible/train).
    const inner = subdirs(direct.ir).filter((s) => isDir(join(direct.vi, s)));
    const hasImagesHere = readdirSync(direct.ir).some((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()));
    if (inner.length && (!hasImagesHere || split)) {
      const s = chooseSplit(root, inner, split);
      return { irDir: join(direct.ir, s), viDir: join(direct.vi, s), split: s };
    }
    if (split) throw new DatasetError(`${root}: no split "${split}"; the images are directly in ${basename(direct.ir)}/ and ${basename(direct.vi)}/`);
    return { irDir: direct.ir, viDir: direct.vi };
  }
  // MSRS: the split is above the modality folders (train/ir, train/vi).
  const outer = subdirs(root).filter((s) => modalityDirs(join(root, s)));
  if (outer.length) {
    const s = chooseSplit(root, outer, split);
    const dirs = modalityDirs(join(root, s))!;
    return { irDir: dirs.ir, viDir: dirs.vi, split: s };
  }
  throw new DatasetError(
    `${root}: no infrared/visible folders; expected ir/ + vi/ (or Ir/ + Vis/, infrared/ + visible/), possibly under train/ or test/`,
  );
}

/** The labels folder next to the modality folders or at the root, descending into the split if it has one. */
function locateLabels(root: string, loc: Located): string | null {
  const levels = [...new Set([dirname(loc.irDir), dirname(dirname(loc.irDir)), root])].filter((d) => relative(root, d).startsWith('..') === false);
  for (const level of levels) {
    const labels = childDir(level, LABEL_NAMES);
    if (!labels) continue;
    const inner = loc.split ? childDir(labels, [loc.split.toLowerCase()]) : null;
    return inner ?? labels;
  }
  return null;
}

/** Opens a dataset: its pairs (sorted by name) and its boxes, if any. */
export function openDataset(root: string, opts: { split?: string } = {}): Dataset {
  const loc = locateDataset(root, opts.split);
  const labels = locateLabels(root, loc);
  return { root, split: loc.split, irDir: loc.irDir, viDir: loc.viDir, pairs: matchPairsInFolders(loc.irDir, loc.viDir), boxes: labels ? openBoxSource(labels) : null };
}

/** A number in [0, 1) fixed by the seed and the name alone. */
function unitHash(seed: number | string, name: string): number {
  const digest = createHash('sha256').update(`${seed}\0${name}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * A train/validation split. Each pair goes to validation when the hash of (seed, name) falls below valFraction,
 * so the assignment of a pair never depends on the other pairs: adding or removing files moves no one else.
 * The expected validation share is valFraction; with at least two pairs and 0 < valFraction < 1 neither side
 * is left empty (the pair with the lowest, or highest, hash is moved over).
 */
export function splitPairs<T extends { name: string }>(pairs: T[], opts: { valFraction: number; seed: number | string }): { train: T[]; val: T[] } {
  const { valFraction, seed } = opts;
  if (!(valFraction >= 0 && valFraction <= 1)) throw new DatasetError(`the validation fraction must be in [0, 1], got ${valFraction}`);
  const scored = pairs.map((p) => ({ p, u: unitHash(seed, p.name) })).sort((a, b) => a.u - b.u);
  let cut = scored.findIndex((s) => s.u >= valFraction);
  if (cut < 0) cut = scored.length;
  if (pairs.length >= 2 && valFraction > 0 && valFraction < 1) cut = Math.min(Math.max(cut, 1), pairs.length - 1);
  const inVal = new Set(scored.slice(0, cut).map((s) => s.p));
  return { train: pairs.filter((p) => !inVal.has(p)), val: pairs.filter((p) => inVal.has(p)) };
}
