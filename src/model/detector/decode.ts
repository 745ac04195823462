/**
 * Decoding of the CenterNet-style head into boxes, entirely on the GPU until one read-back of the final boxes.
 *
 * Per level and cell (x, y) of class c: score = sigmoid(heat); centre ((x + offset₀)·s, (y + offset₁)·s); size
 * s·exp(size₀) × s·exp(size₁); the box, centre ± size/2, is clipped to the image. A cell is a candidate when
 * score ≥ scoreThreshold and its heat is ≥ every in-map neighbour of its 3×3 neighbourhood (CenterNet's peaks;
 * a plateau yields all its cells, which NMS then merges). Candidates are ranked by score, ties by level, class,
 * y, x; greedy class-wise NMS keeps up to maxDetections per image.
 *
 * At most maxCandidates candidates per image enter NMS. With more, the best-scored are kept (exactly, except
 * among candidates whose logits agree to about 1/128 of an octave at the cut, where the GPU's timing picks) and
 * the others are counted as dropped: `decodeDetectionsWithStats` returns the counts.
 */
import type { Box } from '../../io/boxes.ts';
import { engine } from '../../tensor/engine.ts';
import { Tensor } from '../../tensor/tensor.ts';
import { LimitError } from '../../runtime/errors.ts';
import { HISTOGRAM_BINS, STATE_WORDS, CANDIDATE_WORDS, candidateCutoffKernel, peakAppendKernel, peakHistogramKernel, type PeakLevel, type PeakOptions } from '../../kernels/detection-peaks.ts';
import { OUT_HEADER_WORDS, OUT_RECORD_WORDS, maxCandidateCapacity, nmsKernel } from '../../kernels/nms.ts';

export interface Detection extends Box {
  score: number;
  classIndex: number;
}

export interface HeadLevel {
  /** Class logits (B, C, h, w). */
  heat: Tensor;
  /** Log box size in strides (B, 2, h, w): width, height. */
  size: Tensor;
  /** Centre offset in cells (B, 2, h, w): x, y. */
  offset: Tensor;
  stride: number;
}

export interface DecodeOptions {
  classNames: string[];
  imageWidth: number;
  imageHeight: number;
  /** Default 0.1. */
  scoreThreshold?: number;
  /** Default 0.5; a box is suppressed by a better one of its class with IoU above this. */
  iouThreshold?: number;
  /** Candidates per image entering NMS (default 1024; at most what the device's workgroup memory sorts). */
  maxCandidates?: number;
  /** Default 100 per image. */
  maxDetections?: number;
}

export interface DecodeResult {
  /** Per image, by score descending. */
  detections: Detection[][];
  /** Per image: candidates found (before the capacity limit). */
  candidates: number[];
  /** Per image: candidates left out of NMS for lack of capacity. */
  dropped: number[];
}

/** The smallest float32 t with heat ≥ t ⇔ sigmoid(heat) ≥ threshold, for float32 heat. */
export function logitThreshold(scoreThreshold: number): number {
  if (scoreThreshold <= 0) return -Infinity;
  if (scoreThreshold >= 1) return Infinity;
  const logit = Math.log(scoreThreshold) - Math.log1p(-scoreThreshold);
  const f = Math.fround(logit);
  if (f >= logit) return f;
  // One float32 step up (f < logit, so f is not +Infinity).
  const a = new Float32Array([f]);
  const u = new Int32Array(a.buffer);
  if (f === 0) a[0] = 1.401298464324817e-45;
  else u[0] += f > 0 ? 1 : -1;
  return a[0];
}

function checkLevels(levels: HeadLevel[], classes: number): number {
  if (levels.length === 0) throw new Error('decodeDetections: no head levels');
  const B = levels[0].heat.shape[0];
  levels.forEach((l, i) => {
    const [b, c, h, w] = l.heat.shape;
    const what = `decodeDetections: level ${i}`;
    if (l.heat.rank !== 4 || b !== B || c !== classes)
      throw new Error(`${what}: heat must be (${B}, ${classes}, h, w) for ${classes} classes, got [${l.heat.shape.join(', ')}]`);
    for (const [name, t] of [['size', l.size], ['offset', l.offset]] as const)
      if (t.rank !== 4 || t.shape[0] !== B || t.shape[1] !== 2 || t.shape[2] !== h || t.shape[3] !== w)
        throw new Error(`${what}: ${name} must be (${B}, 2, ${h}, ${w}), got [${t.shape.join(', ')}]`);
    for (const t of [l.heat, l.size, l.offset]) if (t.dtype !== 'f32') throw new Error(`${what}: tensors must be float32`);
    if (!(l.stride > 0)) throw new Error(`${what}: stride ${l.stride} must be positive`);
  });
  return B;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`decodeDetections: ${name} ${v} must be an integer ≥ ${min}`);
}

/** Decodes the head into boxes per image, with the candidate counts. */
export async function decodeDetectionsWithStats(levels: HeadLevel[], opts: DecodeOptions): Promise<DecodeResult> {
  const { classNames, imageWidth, imageHeight, scoreThreshold = 0.1, iouThreshold = 0.5, maxCandidates = 1024, maxDetections = 100 } = opts;
  const B = checkLevels(levels, classNames.length);
  checkCount('maxCandidates', maxCandidates, 1);
  checkCount('maxDetections', maxDetections, 0);
  if (maxCandidates > maxCandidateCapacity())
    throw new LimitError(`decodeDetections: maxCandidates ${maxCandidates} exceeds the ${maxCandidateCapacity()} this device sorts in one workgroup`);
  if (!(imageWidth > 0 && imageHeight > 0)) throw new Error(`decodeDetections: image size ${imageWidth}×${imageHeight} is invalid`);
  if (B === 0) return { detections: [], candidates: [], dropped: [] };

  const po: PeakOptions = { imageWidth, imageHeight, logitThreshold: logitThreshold(scoreThreshold), capacity: maxCandidates };
  const { out, work } = recordDecode(levels, po, B, maxDetections, iouThreshold);
  try {
    const bytes = await engine().rt.read(out.buffer, 0, out.bytes);
    return unpack(bytes, B, maxDetections, classNames);
  } finally {
    for (const t of [out, ...work]) t.dispose();
  }
}

/**
 * Records the decoding kernels of B images (peak histogram, candidate cut-off, peaks, NMS) without reading back:
 * `out` holds the packed result, `work` the kernels' working buffers; the caller disposes both. Also what
 * `moefusion bench --kernels` times.
 */
export function recordDecode(levels: HeadLevel[], po: PeakOptions, B: number, maxDetections: number, iouThreshold: number): { out: Tensor; work: Tensor[] } {
  const peakLevels: PeakLevel[] = [];
  let base = 0;
  for (const l of levels) {
    peakLevels.push({ ...l, levelBase: base });
    base += l.heat.size / B;
  }
  if (base > 0xffffffff) throw new LimitError(`decodeDetections: ${base} cells per image exceed the 32-bit cell keys`);

  const hist = Tensor.zeros([B, HISTOGRAM_BINS], 'u32');
  const state = Tensor.zeros([B, STATE_WORDS], 'u32');
  const candidates = Tensor.empty([B, po.capacity, CANDIDATE_WORDS], 'u32');
  const out = Tensor.empty([B * OUT_HEADER_WORDS + B * maxDetections * OUT_RECORD_WORDS], 'u32');
  const work = [hist, state, candidates];
  try {
    for (const l of peakLevels) peakHistogramKernel(l, po, hist);
    candidateCutoffKernel(hist, state, B, po.capacity);
    for (const l of peakLevels) peakAppendKernel(l, po, state, candidates);
    nmsKernel(candidates, state, out, B, po.capacity, maxDetections, iouThreshold);
  } catch (e) {
    for (const t of [out, ...work]) t.dispose();
    throw e;
  }
  return { out, work };
}

function unpack(bytes: ArrayBuffer, B: number, maxDetections: number, classNames: string[]): DecodeResult {
  const u = new Uint32Array(bytes);
  const f = new Float32Array(bytes);
  const result: DecodeResult = { detections: [], candidates: [], dropped: [] };
  for (let b = 0; b < B; b++) {
    const h = b * OUT_HEADER_WORDS;
    const dets: Detection[] = [];
    for (let k = 0; k < u[h]; k++) {
      const o = B * OUT_HEADER_WORDS + (b * maxDetections + k) * OUT_RECORD_WORDS;
      const classIndex = u[o + 5];
      dets.push({ label: classNames[classIndex], x0: f[o], y0: f[o + 1], x1: f[o + 2], y1: f[o + 3], score: f[o + 4], classIndex });
    }
    result.detections.push(dets);
    result.candidates.push(u[h + 1]);
    result.dropped.push(u[h + 2]);
  }
  return result;
}

/** Decodes the head into boxes per image (see decodeDetectionsWithStats for the candidate counts). */
export async function decodeDetections(levels: HeadLevel[], opts: DecodeOptions): Promise<Detection[][]> {
  return (await decodeDetectionsWithStats(levels, opts)).detections;
}
