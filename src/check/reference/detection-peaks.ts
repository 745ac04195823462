/**
 * Float64 references of the CenterNet peak extraction (src/kernels/detection-peaks.ts): the candidates of one image
 * (3×3 peaks at or above the threshold, decoded into clipped boxes) and the capacity cut over the logit histogram.
 */

/** One head level on the host: class logits (B, C, h, w), log sizes and centre offsets (B, 2, h, w). */
export interface RefHeadLevel {
  shape: [number, number, number, number]; // B, C, h, w
  stride: number;
  heat: ArrayLike<number>;
  size: ArrayLike<number>;
  offset: ArrayLike<number>;
}

export interface RefPeakOptions {
  imageWidth: number;
  imageHeight: number;
  /** A cell is a candidate when sigmoid(logit) ≥ this (default 0.1)… */
  scoreThreshold?: number;
  /** …or, when given, when logit ≥ this (what the kernel itself is handed). */
  logitThreshold?: number;
}

export interface RefCandidate {
  classIndex: number;
  score: number;
  /** The logit. */
  heat: number;
  /** Cell key: the cells of the previous levels, then (c·h + y)·w + x; unique per image. */
  key: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export const sigmoid64 = (v: number): number => 1 / (1 + Math.exp(-v));

/** The candidates of image b over all levels, in cell-key order. */
export function refPeaks(levels: RefHeadLevel[], b: number, o: RefPeakOptions): RefCandidate[] {
  const { scoreThreshold = 0.1 } = o;
  const accept = (v: number) => (o.logitThreshold !== undefined ? v >= o.logitThreshold : sigmoid64(v) >= scoreThreshold);
  const cands: RefCandidate[] = [];
  let base = 0;
  for (const l of levels) {
    const [, C, h, w] = l.shape;
    const s = l.stride;
    const at = (c: number, y: number, x: number) => l.heat[((b * C + c) * h + y) * w + x];
    const pl = (a: ArrayLike<number>, k: number, y: number, x: number) => a[((b * 2 + k) * h + y) * w + x];
    for (let c = 0; c < C; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v = at(c, y, x);
          if (!accept(v)) continue;
          let peak = true;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const [yy, xx] = [y + dy, x + dx];
              if ((dx || dy) && yy >= 0 && xx >= 0 && yy < h && xx < w && at(c, yy, xx) > v) peak = false;
            }
          if (!peak) continue;
          const cx = (x + pl(l.offset, 0, y, x)) * s;
          const cy = (y + pl(l.offset, 1, y, x)) * s;
          const bw = s * Math.exp(pl(l.size, 0, y, x));
          const bh = s * Math.exp(pl(l.size, 1, y, x));
          const clip = (u: number, hi: number) => Math.min(Math.max(u, 0), hi);
          cands.push({
            classIndex: c,
            score: sigmoid64(v),
            heat: v,
            key: base + (c * h + y) * w + x,
            x0: clip(cx - bw / 2, o.imageWidth),
            y0: clip(cy - bh / 2, o.imageHeight),
            x1: clip(cx + bw / 2, o.imageWidth),
            y1: clip(cy + bh / 2, o.imageHeight),
          });
        }
    base += C * h * w;
  }
  return cands;
}

/** A u32 key ordered like the float32 value v (−0 keyed as +0), as the kernel's logit_key. */
export function logitKey(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const bits = u === 0x80000000 ? 0 : u;
  return (bits & 0x80000000) !== 0 ? ~bits >>> 0 : (bits ^ 0x80000000) >>> 0;
}

/** No boundary bin: every candidate fits. */
export const REF_NO_BIN = 0xffffffff;

/**
 * The capacity cut over the histogram of the candidates' logit keys (bin = key >> 16), from the top: with more
 * candidates than `capacity`, the boundary bin is the one where the count from the top first exceeds it; the
 * bins above it are kept whole (`above` candidates), the boundary bin fills the remaining slots.
 */
export function refCandidateCutoff(keys: number[], capacity: number): { lowestKeptBin: number; boundaryBin: number; total: number; above: number; inBoundary: number } {
  const total = keys.length;
  if (total <= capacity) return { lowestKeptBin: 0, boundaryBin: REF_NO_BIN, total, above: total, inBoundary: 0 };
  const counts = new Map<number, number>();
  for (const k of keys) counts.set(k >>> 16, (counts.get(k >>> 16) ?? 0) + 1);
  let above = 0;
  for (const bin of [...counts.keys()].sort((a, b) => b - a)) {
    const n = counts.get(bin)!;
    if (above + n > capacity) return { lowestKeptBin: bin + 1, boundaryBin: bin, total, above, inBoundary: n };
    above += n;
  }
  throw new Error('unreachable: more candidates than the capacity');
}
