/**
 * Object-detection accuracy per class: VOC AP at IoU 0.5 (all-point interpolation as in the VOC2010+ devkit, plus
 * the VOC2007 11-point variant) and COCO AP averaged over IoU 0.50:0.05:0.95 (101-point recall interpolation, as
 * pycocotools' COCOeval with area range 'all', no crowd boxes, no 'difficult' flags).
 *
 * Boxes are in continuous pixel coordinates (src/io/boxes.ts), so area = (x1 − x0)(y1 − y0) with no VOC "+1".
 *
 * Matching (both metrics): a class's detections are taken in descending score order, ties kept in input order
 * (image order, then order within the image). Each takes the still-unmatched truth of its image and class with the
 * highest IoU, provided that IoU ≥ the threshold; otherwise it is a false positive, so a second hit on an already
 * matched truth is a false positive unless another unmatched truth overlaps it enough. This is COCOeval's rule, used
 * for the VOC AP too; the VOC devkit differs in three small ways left out on purpose: it looks only at the single
 * best-IoU truth, matched or not; it needs IoU strictly > 0.5; and it counts pixels inclusively (+1).
 *
 * Deliberate differences from pycocotools, all tiny: thresholds are the exact decimals k/100 (numpy's linspace gives
 * e.g. 0.8999999999999999 for 0.9 and 0.35000000000000003 for recall 0.35, which can move a recall point that lands
 * exactly on a threshold), recall comparisons are done in integers, and precision has no +eps in its denominator,
 * so perfect detections score exactly 1.
 */
import type { Box } from '../io/boxes.ts';

export type Detection = Box & { score: number };

export interface ImageDetections {
  detections: Detection[];
  truths: Box[];
}

export interface ClassAp {
  label: string;
  /** Ground-truth boxes of this class over all images. */
  truths: number;
  /** Detections of this class over all images, before the maxDetections cut. */
  detections: number;
  /** VOC AP at IoU ≥ 0.5, all-point interpolation. */
  ap50: number;
  /** COCO AP at IoU ≥ 0.75 (101-point). */
  ap75: number;
  /** COCO AP averaged over IoU 0.50:0.05:0.95 (101-point). */
  ap: number;
  /** VOC2007 11-point AP at IoU ≥ 0.5. */
  voc07?: number;
}

export interface DetectionScores {
  classes: ClassAp[];
  /** Means of ap50, ap75 and ap over the classes that have ground truth. */
  map50: number;
  map75: number;
  map: number;
}

export interface DetectionEvalOptions {
  /** Classes to score, in this order; default: the labels of the truths, sorted. Other labels are ignored. */
  classes?: string[];
  /** COCO: keep at most this many top-scoring detections per image and class (COCOeval's maxDets); default 100. */
  maxDetections?: number;
}

/** COCO IoU thresholds 0.50, 0.55, …, 0.95 as exact decimals. */
export const COCO_IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) => (50 + 5 * i) / 100);

const area = (b: Box) => Math.max(0, b.x1 - b.x0) * Math.max(0, b.y1 - b.y0);

/** Intersection over union of two boxes; 0 when they do not overlap (also for degenerate, zero-area boxes). */
export function boxIou(a: Box, b: Box): number {
  const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / (area(a) + area(b) - inter);
}

/** One detection of one class: its image, its score, its IoU with each truth of that image and class. */
interface Ranked {
  image: number;
  score: number;
  /** Input position over all images: the tie-break for equal scores. */
  seq: number;
  ious: Float64Array;
}

/** True-positive flags of `dets` (already in score order) at one IoU threshold. */
function match(dets: Ranked[], truthsPerImage: Map<number, number>, threshold: number): Uint8Array {
  const taken = new Map<number, Uint8Array>();
  for (const [image, n] of truthsPerImage) taken.set(image, new Uint8Array(n));
  const tp = new Uint8Array(dets.length);
  dets.forEach((d, i) => {
    const used = taken.get(d.image);
    if (!used) return;
    let best = -1;
    let bestIou = threshold;
    for (let g = 0; g < d.ious.length; g++) {
      // `<` rather than `<=`: on equal IoU the later truth wins, as in COCOeval.
      if (used[g] || d.ious[g] < bestIou) continue;
      bestIou = d.ious[g];
      best = g;
    }
    if (best >= 0) {
      used[best] = 1;
      tp[i] = 1;
    }
  });
  return tp;
}

/** Cumulative true positives and the monotone precision envelope (max precision at this rank or any later one). */
function precisionEnvelope(tp: Uint8Array): { cumTp: Int32Array; envelope: Float64Array } {
  const n = tp.length;
  const cumTp = new Int32Array(n);
  const envelope = new Float64Array(n);
  let c = 0;
  for (let i = 0; i < n; i++) {
    c += tp[i];
    cumTp[i] = c;
    envelope[i] = c / (i + 1);
  }
  for (let i = n - 2; i >= 0; i--) envelope[i] = Math.max(envelope[i], envelope[i + 1]);
  return { cumTp, envelope };
}

/** Area under the envelope (VOC2010+): recall rises by 1/positives at each true positive. */
function allPointAp(tp: Uint8Array, positives: number): number {
  const { envelope } = precisionEnvelope(tp);
  let s = 0;
  for (let i = 0; i < tp.length; i++) if (tp[i]) s += envelope[i];
  return s / positives;
}

/**
 * Mean over recall levels k/steps (k = 0..steps) of the envelope at the first rank whose recall reaches the level,
 * 0 when none does: 101 points for COCO (steps 100), 11 for VOC2007 (steps 10).
 */
function interpolatedAp(tp: Uint8Array, positives: number, steps: number): number {
  const { cumTp, envelope } = precisionEnvelope(tp);
  let s = 0;
  let i = 0;
  for (let k = 0; k <= steps; k++) {
    // recall ≥ k/steps  ⇔  steps·tp ≥ k·positives, exact in integers.
    while (i < tp.length && steps * cumTp[i] < k * positives) i++;
    if (i === tp.length) break;
    s += envelope[i];
  }
  return s / (steps + 1);
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

function checkBox(b: Box, what: string): void {
  if (![b.x0, b.y0, b.x1, b.y1].every(Number.isFinite)) throw new RangeError(`${what} has a non-finite coordinate: ${JSON.stringify(b)}`);
}

/**
 * Per-class VOC and COCO average precision over a set of images. A class without ground truth gets NaN APs (COCO
 * reports −1) and is left out of the means, whatever its detections.
 */
export function evaluateDetections(images: ImageDetections[], opts: DetectionEvalOptions = {}): DetectionScores {
  const maxDet = opts.maxDetections ?? 100;
  if (!(maxDet >= 1) || (maxDet !== Infinity && !Number.isInteger(maxDet))) throw new RangeError(`maxDetections must be a positive integer, got ${maxDet}`);
  const labels = opts.classes ?? [...new Set(images.flatMap((im) => im.truths.map((t) => t.label)))].sort();
  const classIndex = new Map<string, number>();
  for (const [i, label] of labels.entries()) {
    if (classIndex.has(label)) throw new RangeError(`class "${label}" is listed twice`);
    classIndex.set(label, i);
  }

  const dets: Ranked[][] = labels.map(() => []);
  const detCounts = labels.map(() => 0);
  const truthsPerImage = labels.map(() => new Map<number, number>());
  let seq = 0;
  images.forEach((im, image) => {
    const truthsByClass = new Map<number, Box[]>();
    for (const [j, t] of im.truths.entries()) {
      checkBox(t, `image ${image} truth ${j}`);
      const c = classIndex.get(t.label);
      if (c === undefined) continue;
      const list = truthsByClass.get(c);
      if (list) list.push(t);
      else truthsByClass.set(c, [t]);
    }
    for (const [c, list] of truthsByClass) truthsPerImage[c].set(image, list.length);
    for (const [j, d] of im.detections.entries()) {
      checkBox(d, `image ${image} detection ${j}`);
      if (!Number.isFinite(d.score)) throw new RangeError(`image ${image} detection ${j} has a non-finite score (${d.score})`);
      const c = classIndex.get(d.label);
      if (c === undefined) continue;
      const truths = truthsByClass.get(c) ?? [];
      dets[c].push({ image, score: d.score, seq: seq++, ious: Float64Array.from(truths, (t) => boxIou(d, t)) });
      detCounts[c]++;
    }
  });

  const classes = labels.map((label, c): ClassAp => {
    const positives = [...truthsPerImage[c].values()].reduce((a, b) => a + b, 0);
    const base = { label, truths: positives, detections: detCounts[c] };
    if (positives === 0) return { ...base, ap50: NaN, ap75: NaN, ap: NaN, voc07: NaN };
    const ranked = dets[c].sort((a, b) => b.score - a.score || a.seq - b.seq);
    // Per-image rank in this (global) order is the per-image score order, so the cut matches COCOeval's.
    const rank = new Map<number, number>();
    const kept = ranked.filter((d) => {
      const r = rank.get(d.image) ?? 0;
      rank.set(d.image, r + 1);
      return r < maxDet;
    });
    const tp50 = match(ranked, truthsPerImage[c], 0.5);
    const coco = COCO_IOU_THRESHOLDS.map((t) => interpolatedAp(match(kept, truthsPerImage[c], t), positives, 100));
    return {
      ...base,
      ap50: allPointAp(tp50, positives),
      ap75: coco[COCO_IOU_THRESHOLDS.indexOf(0.75)],
      ap: mean(coco),
      voc07: interpolatedAp(tp50, positives, 10),
    };
  });

  const scored = classes.filter((c) => c.truths > 0);
  return {
    classes,
    map50: mean(scored.map((c) => c.ap50)),
    map75: mean(scored.map((c) => c.ap75)),
    map: mean(scored.map((c) => c.ap)),
  };
}

/** An aligned text table: one row per class and a mean row; '–' marks a class without ground truth. */
export function formatDetectionTable(s: DetectionScores): string {
  const withVoc07 = s.classes.some((c) => c.voc07 !== undefined);
  const num = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(4));
  const header = ['class', 'truths', 'dets', 'AP50', ...(withVoc07 ? ['AP50-07'] : []), 'AP75', 'AP'];
  const rows = s.classes.map((c) => [c.label, String(c.truths), String(c.detections), num(c.ap50), ...(withVoc07 ? [num(c.voc07)] : []), num(c.ap75), num(c.ap)]);
  const total = (k: 'truths' | 'detections') => String(s.classes.reduce((a, c) => a + c[k], 0));
  const meanVoc07 = mean(s.classes.filter((c) => c.truths > 0 && c.voc07 !== undefined).map((c) => c.voc07 as number));
  rows.push(['mean', total('truths'), total('detections'), num(s.map50), ...(withVoc07 ? [num(meanVoc07)] : []), num(s.map75), num(s.map)]);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(0, -1).map(line), widths.map((w) => '-'.repeat(w)).join('  '), line(rows[rows.length - 1])];
  if (s.classes.some((c) => c.truths === 0)) out.push('– : no ground truth; left out of the means');
  return out.join('\n');
}
