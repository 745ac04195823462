/**
 * Float64 references of the class-wise NMS kernel (src/kernels/nms.ts): ranking by logit (ties by cell key), the
 * capacity, greedy suppression; and of the whole detection decode (peaks of detection-peaks.ts, then NMS).
 */
import { refPeaks, type RefCandidate, type RefHeadLevel } from './detection-peaks.ts';
import type { DecodeOptions } from '../../model/detector/decode.ts';

export interface RefBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export function iou64(a: RefBox, b: RefBox): number {
  const iw = Math.max(Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), 0);
  const ih = Math.max(Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0), 0);
  const inter = iw * ih;
  const union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return union > 0 ? inter / union : 0;
}

/** What NMS needs of a candidate: its box, class, logit and unique cell key. */
export interface RefNmsCandidate extends RefBox {
  classIndex: number;
  heat: number;
  key: number;
}

/** The first `capacity` candidates by logit descending, ties by cell key ascending. */
export function refRank<T extends RefNmsCandidate>(cands: readonly T[], capacity: number): T[] {
  return [...cands].sort((p, q) => q.heat - p.heat || p.key - q.key).slice(0, capacity);
}

/** Greedy class-wise NMS over ranked candidates: keeps up to maxDetections, suppressing IoU > iouThreshold. */
export function refNms<T extends RefNmsCandidate>(ranked: readonly T[], iouThreshold: number, maxDetections: number): T[] {
  const kept: T[] = [];
  const gone = new Array(ranked.length).fill(false);
  for (let i = 0; i < ranked.length && kept.length < maxDetections; i++) {
    if (gone[i]) continue;
    kept.push(ranked[i]);
    for (let j = i + 1; j < ranked.length; j++) if (ranked[j].classIndex === ranked[i].classIndex && iou64(ranked[i], ranked[j]) > iouThreshold) gone[j] = true;
  }
  return kept;
}

export type RefDetection = RefCandidate & { label: string };

/** The whole decode of src/model/detector/decode.ts: peaks, ranking, the top maxCandidates, NMS; per image. */
export function refDetections(levels: RefHeadLevel[], o: DecodeOptions): { dets: RefDetection[][]; candidates: number[] } {
  const { iouThreshold = 0.5, maxCandidates = 1024, maxDetections = 100 } = o;
  const B = levels[0].shape[0];
  const dets: RefDetection[][] = [];
  const candidates: number[] = [];
  for (let b = 0; b < B; b++) {
    const cands = refPeaks(levels, b, o).map((c) => ({ ...c, label: o.classNames[c.classIndex] }));
    candidates.push(cands.length);
    dets.push(refNms(refRank(cands, maxCandidates), iouThreshold, maxDetections));
  }
  return { dets, candidates };
}
