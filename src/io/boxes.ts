/**
 * Object boxes from the common annotation formats, in pixels of the source image:
 * VOC XML (M3FD, LLVIP), YOLO txt (class cx cy w h, normalised), COCO JSON (bbox [x, y, w, h]).
 *
 * Coordinates are continuous: pixel (col j, row i) covers [j, j+1) × [i, i+1), so a box [x0, x1) × [y0, y1)
 * with integer corners covers exactly the pixels x0..x1-1 and y0..y1-1. VOC's xmin..xmax are 1-based inclusive
 * pixel indices (the VOC devkit's convention), so they become x0 = xmin - 1, x1 = xmax.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface Box {
  label: string;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface ImageSize {
  width: number;
  height: number;
}

export class BoxFormatError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'BoxFormatError';
  }
}

function toNumber(value: unknown, file: string, what: string): number {
  const n = typeof value === 'number' ? value : Number(String(value ?? '').trim());
  if (value === undefined || value === '' || !Number.isFinite(n)) throw new BoxFormatError(file, `${what} is not a number (${JSON.stringify(value)})`);
  return n;
}

/** Boxes annotated on an image of `from` size, scaled to `to` when both are known and differ. */
function resize(boxes: Box[], from: ImageSize | undefined, to: ImageSize | undefined): Box[] {
  if (!from || !to || (from.width === to.width && from.height === to.height)) return boxes;
  return scaleBoxes(boxes, from.width, from.height, to.width, to.height);
}

const xml = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  isArray: (name) => name === 'object',
});

export interface VocAnnotation {
  size?: ImageSize;
  boxes: Box[];
}

/** Parses a VOC annotation (`<annotation><size>…<object><name>…<bndbox><xmin>…`). */
export function parseVoc(text: string, file = 'VOC annotation'): VocAnnotation {
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new BoxFormatError(file, `malformed XML at line ${valid.err.line}: ${valid.err.msg}`);
  const root = xml.parse(text)?.annotation;
  if (!root || typeof root !== 'object') throw new BoxFormatError(file, 'no <annotation> element: not a VOC file');
  const size = root.size && root.size.width !== undefined
    ? { width: toNumber(root.size.width, file, '<size><width>'), height: toNumber(root.size.height, file, '<size><height>') }
    : undefined;
  const boxes = ((root.object ?? []) as Array<Record<string, any>>).map((o, i) => {
    const b = o.bndbox;
    if (!b) throw new BoxFormatError(file, `<object> ${i + 1} has no <bndbox>`);
    const at = `<object> ${i + 1} <bndbox>`;
    return {
      label: String(o.name ?? '').trim(),
      x0: toNumber(b.xmin, file, `${at}<xmin>`) - 1,
      y0: toNumber(b.ymin, file, `${at}<ymin>`) - 1,
      x1: toNumber(b.xmax, file, `${at}<xmax>`),
      y1: toNumber(b.ymax, file, `${at}<ymax>`),
    };
  });
  return { size: size && size.width > 0 && size.height > 0 ? size : undefined, boxes };
}

/** Parses YOLO lines `class cx cy w h` (normalised to [0,1]); labels come from classNames or are the class index. */
export function parseYolo(text: string, size: ImageSize, classNames: string[] = [], file = 'YOLO labels'): Box[] {
  const boxes: Box[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === '') return;
    if (fields.length < 5) throw new BoxFormatError(file, `line ${i + 1}: expected "class cx cy w h", got "${line.trim()}"`);
    const [cls, cx, cy, w, h] = fields.slice(0, 5).map((f, k) => toNumber(f, file, `line ${i + 1} field ${k + 1}`));
    boxes.push({
      label: classNames[cls] ?? String(cls),
      x0: (cx - w / 2) * size.width,
      y0: (cy - h / 2) * size.height,
      x1: (cx + w / 2) * size.width,
      y1: (cy + h / 2) * size.height,
    });
  });
  return boxes;
}

export interface CocoImage {
  size: ImageSize;
  boxes: Box[];
}

/** Parses COCO JSON into one entry per image, keyed by the image's file stem (file name without folder and extension). */
export function parseCoco(text: string, file = 'COCO annotations'): Map<string, CocoImage> {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new BoxFormatError(file, `malformed JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(doc?.images) || !Array.isArray(doc?.annotations))
    throw new BoxFormatError(file, 'not COCO: expected "images" and "annotations" arrays');
  const names = new Map<number, string>((doc.categories ?? []).map((c: any) => [c.id, String(c.name)]));
  const byId = new Map<number, CocoImage>();
  const out = new Map<string, CocoImage>();
  for (const img of doc.images) {
    const entry = { size: { width: toNumber(img.width, file, `image ${img.id} width`), height: toNumber(img.height, file, `image ${img.id} height`) }, boxes: [] };
    byId.set(img.id, entry);
    out.set(stemOf(String(img.file_name)), entry);
  }
  for (const a of doc.annotations) {
    const img = byId.get(a.image_id);
    if (!img) throw new BoxFormatError(file, `annotation ${a.id} refers to image ${a.image_id}, which is not in "images"`);
    if (!Array.isArray(a.bbox) || a.bbox.length !== 4) throw new BoxFormatError(file, `annotation ${a.id}: bbox must be [x, y, w, h]`);
    const [x, y, w, h] = a.bbox.map((v: unknown, k: number) => toNumber(v, file, `annotation ${a.id} bbox[${k}]`));
    img.boxes.push({ label: names.get(a.category_id) ?? String(a.category_id), x0: x, y0: y, x1: x + w, y1: y + h });
  }
  return out;
}

export function stemOf(file: string): string {
  const name = basename(file.replace(/\\/g, '/'));
  return name.slice(0, name.length - extname(name).length);
}

/** Scales boxes from an image of fromW×fromH pixels to one of toW×toH. */
export function scaleBoxes(boxes: Box[], fromW: number, fromH: number, toW: number, toH: number): Box[] {
  const sx = toW / fromW;
  const sy = toH / fromH;
  return boxes.map((b) => ({ label: b.label, x0: b.x0 * sx, y0: b.y0 * sy, x1: b.x1 * sx, y1: b.y1 * sy }));
}

const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));

/**
 * A width×height mask (row-major), 1 where a pixel's centre (j + 0.5, i + 0.5) lies inside any box
 * (x0 ≤ cx < x1, y0 ≤ cy < y1), 0 elsewhere. Boxes partly outside the image are clipped.
 */
export function boxMask(boxes: Box[], width: number, height: number): Float32Array {
  const mask = new Float32Array(width * height);
  for (const b of boxes) {
    // First and one-past-last pixel whose centre is inside: j + 0.5 ≥ x0 ⇔ j ≥ ceil(x0 - 0.5).
    const j0 = clamp(Math.ceil(b.x0 - 0.5), width);
    const j1 = clamp(Math.ceil(b.x1 - 0.5), width);
    const i0 = clamp(Math.ceil(b.y0 - 0.5), height);
    const i1 = clamp(Math.ceil(b.y1 - 0.5), height);
    if (j1 <= j0) continue;
    for (let i = i0; i < i1; i++) mask.fill(1, i * width + j0, i * width + j1);
  }
  return mask;
}

/** The boxes of a labelled dataset: one folder of VOC .xml or YOLO .txt files named by image stem, or one COCO .json. */
export interface BoxSource {
  dir: string;
  format: 'voc' | 'yolo' | 'coco';
  /** Boxes for an image, in pixels of an image of `size`; [] when the image has no annotation (no objects). */
  read(stem: string, size: ImageSize): Box[];
}

const CLASS_LISTS = ['classes.txt', 'obj.names', 'classes.names'];

export function openBoxSource(dir: string): BoxSource {
  const files = readdirSync(dir).filter((f) => !f.startsWith('.'));
  const jsons = files.filter((f) => extname(f).toLowerCase() === '.json');
  if (jsons.length > 1) throw new BoxFormatError(dir, `several COCO files (${jsons.join(', ')}): keep one`);
  if (jsons.length === 1) {
    const file = join(dir, jsons[0]);
    const images = parseCoco(readFileSync(file, 'utf8'), file);
    return { dir, format: 'coco', read: (stem, size) => (images.has(stem) ? resize(images.get(stem)!.boxes, images.get(stem)!.size, size) : []) };
  }
  const perImage = new Map<string, string>();
  for (const f of files) {
    const ext = extname(f).toLowerCase();
    if ((ext === '.xml' || ext === '.txt') && !CLASS_LISTS.includes(f.toLowerCase())) perImage.set(stemOf(f), join(dir, f));
  }
  const format = [...perImage.values()].some((f) => f.toLowerCase().endsWith('.xml')) ? 'voc' : 'yolo';
  const classList = files.find((f) => CLASS_LISTS.includes(f.toLowerCase()));
  const classNames = classList ? readFileSync(join(dir, classList), 'utf8').split(/\r?\n/).map((s) => s.trim()).filter(Boolean) : [];
  return {
    dir,
    format,
    read(stem, size) {
      const file = perImage.get(stem);
      if (!file) return [];
      const text = readFileSync(file, 'utf8');
      if (file.toLowerCase().endsWith('.txt')) return parseYolo(text, size, classNames, file);
      const voc = parseVoc(text, file);
      return resize(voc.boxes, voc.size, size);
    },
  };
}

/** Boxes of a crop at (x0, y0) of size w×h: shifted, clipped, and kept when their centre lies inside. */
export function cropBoxes(boxes: Box[], x0: number, y0: number, w: number, h: number): Box[] {
  return boxes.flatMap((b) => {
    const cx = (b.x0 + b.x1) / 2 - x0;
    const cy = (b.y0 + b.y1) / 2 - y0;
    if (cx < 0 || cy < 0 || cx >= w || cy >= h) return [];
    return [{ label: b.label, x0: Math.max(0, b.x0 - x0), y0: Math.max(0, b.y0 - y0), x1: Math.min(w, b.x1 - x0), y1: Math.min(h, b.y1 - y0) }];
  });
}
