/**
 * CenterNet peak extraction for one head level: a cell of class c is a candidate when its logit is at least the
 * score threshold's logit and at least every in-map neighbour of its 3×3 neighbourhood in the same class plane.
 * Candidates of all levels go into one per-image buffer of fixed capacity, without any read-back, in two passes:
 *
 * 1. `peakHistogramKernel` counts each image's candidates in a histogram over the top 16 bits of an
 *    order-preserving key of the logit (65 536 bins, each about 1/128 of an octave wide);
 * 2. `candidateCutoffKernel` (one workgroup per image) finds, when the image has more candidates than the
 *    capacity, the bin where the count from the top crosses the capacity (the boundary bin);
 * 3. `peakAppendKernel` decodes and appends the candidates: those above the boundary bin all fit and take slots
 *    from the front (atomic counter), those in the boundary bin fill the remaining slots from the back in arrival
 *    order, those below are dropped. So on overflow the kept candidates are the best-scored ones, exactly up to
 *    the boundary bin's width; only the choice among candidates inside that one bin depends on the GPU's timing.
 *
 * Candidate record (CANDIDATE_WORDS u32): x0, y0, x1, y1, score (f32 bits), class, logit key, cell key.
 * The cell key (level base + (c·h + y)·w + x) is unique per image and breaks score ties in the NMS sort.
 * Per-image state (STATE_WORDS u32): front count, back count, lowest fully kept bin, boundary bin (or none),
 * total candidates, candidates above the boundary bin.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { Program, type UniformType } from './program.ts';

export const CANDIDATE_WORDS = 8;
export const STATE_WORDS = 8;
export const HISTOGRAM_BINS = 65536;
export const NO_BIN = 0xffffffff;

const WG = 256;

/** WGSL: a u32 key ordered like the f32 value (−0 is keyed as +0 so equal values get equal keys). */
export const LOGIT_KEY_WGSL = /* wgsl */ `
fn logit_key(v: f32) -> u32 {
  let b = select(bitcast<u32>(v), 0u, bitcast<u32>(v) == 0x80000000u);
  return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}`;

/** Geometry of one level and of the image, shared by both peak passes. */
export interface PeakLevel {
  heat: Tensor;
  size: Tensor;
  offset: Tensor;
  stride: number;
  /** First cell key of this level (the cells of the previous levels before it). */
  levelBase: number;
}

export interface PeakOptions {
  imageWidth: number;
  imageHeight: number;
  /** Candidates need logit ≥ this (an f32; ±Infinity allowed). */
  logitThreshold: number;
  capacity: number;
}

/** Uniforms of both peak passes: the level's geometry, the capacity, the stride, the image size, the threshold. */
const LEVEL_UNIFORMS: Record<string, UniformType> = {
  B: 'u32', C: 'u32', h: 'u32', w: 'u32', levelBase: 'u32', cap: 'u32', stride: 'f32', imgW: 'f32', imgH: 'f32', thr: 'f32',
};

const PEAK_TEST = /* wgsl */ `
${LOGIT_KEY_WGSL}
// Whether cell i (flat over B, C, h, w) is a candidate. NaN logits never are; NaN neighbours are ignored.
fn is_peak(i: u32) -> bool {
  let v = H[i];
  if (!(v >= p.thr)) { return false; }
  let x = i32(i % p.w);
  let y = i32((i / p.w) % p.h);
  for (var dy = -1; dy <= 1; dy++) {
    for (var dx = -1; dx <= 1; dx++) {
      let yy = y + dy;
      let xx = x + dx;
      if ((dx == 0 && dy == 0) || yy < 0 || xx < 0 || yy >= i32(p.h) || xx >= i32(p.w)) { continue; }
      if (H[u32(i32(i) + dy * i32(p.w) + dx)] > v) { return false; }
    }
  }
  return true;
}`;

/** One invocation per cell (i, flat over B, C, h, w). */
const histogramProgram = new Program({
  name: 'detection_peak_histogram',
  inputs: { H: 'f32' },
  outputs: { HIST: 'atomic<u32>' },
  uniforms: LEVEL_UNIFORMS,
  workgroupSize: WG,
  flat: true,
  header: PEAK_TEST,
  body: /* wgsl */ `
  if (i >= p.B * p.C * p.h * p.w || !is_peak(i)) { return; }
  let b = i / (p.C * p.h * p.w);
  atomicAdd(&HIST[b * ${HISTOGRAM_BINS}u + (logit_key(H[i]) >> 16u)], 1u);`,
});

const appendProgram = new Program({
  name: 'detection_peak_append',
  inputs: { H: 'f32', S: 'f32', O: 'f32' },
  outputs: { ST: 'atomic<u32>', CAND: 'u32' },
  uniforms: LEVEL_UNIFORMS,
  workgroupSize: WG,
  flat: true,
  header: /* wgsl */ `${PEAK_TEST}
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}`,
  body: /* wgsl */ `
  if (i >= p.B * p.C * p.h * p.w || !is_peak(i)) { return; }
  let perImage = p.C * p.h * p.w;
  let b = i / perImage;
  let r = i - b * perImage;
  let c = r / (p.h * p.w);
  let x = r % p.w;
  let y = (r / p.w) % p.h;
  let v = H[i];
  let key = logit_key(v);
  let bin = key >> 16u;
  let st = b * ${STATE_WORDS}u;
  var slot: u32;
  if (bin >= atomicLoad(&ST[st + 2u])) {
    slot = atomicAdd(&ST[st], 1u);
    if (slot >= p.cap) { return; }  // cannot happen: the cutoff kernel counted these
  } else if (bin == atomicLoad(&ST[st + 3u])) {
    let k = atomicAdd(&ST[st + 1u], 1u);
    if (k >= p.cap - atomicLoad(&ST[st + 5u])) { return; }
    slot = p.cap - 1u - k;
  } else {
    return;
  }
  let plane = p.h * p.w;
  let q = y * p.w + x;
  let cx = (f32(x) + O[(2u * b) * plane + q]) * p.stride;
  let cy = (f32(y) + O[(2u * b + 1u) * plane + q]) * p.stride;
  let hw = 0.5 * p.stride * exp(S[(2u * b) * plane + q]);
  let hh = 0.5 * p.stride * exp(S[(2u * b + 1u) * plane + q]);
  let o = (b * p.cap + slot) * ${CANDIDATE_WORDS}u;
  CAND[o] = bitcast<u32>(clamp(cx - hw, 0.0, p.imgW));
  CAND[o + 1u] = bitcast<u32>(clamp(cy - hh, 0.0, p.imgH));
  CAND[o + 2u] = bitcast<u32>(clamp(cx + hw, 0.0, p.imgW));
  CAND[o + 3u] = bitcast<u32>(clamp(cy + hh, 0.0, p.imgH));
  CAND[o + 4u] = bitcast<u32>(sigmoid(v));
  CAND[o + 5u] = c;
  CAND[o + 6u] = key;
  CAND[o + 7u] = p.levelBase + r;`,
});

/** One workgroup per image. */
const cutoffProgram = new Program({
  name: 'detection_candidate_cutoff',
  inputs: { HIST: 'u32' },
  outputs: { ST: 'atomic<u32>' },
  uniforms: { cap: 'u32' },
  workgroupSize: WG,
  header: /* wgsl */ `
const BINS = ${HISTOGRAM_BINS}u;
const WG = ${WG}u;
const PER = BINS / WG;
var<workgroup> part: array<u32, WG>;`,
  body: /* wgsl */ `
  let base = wid.x * BINS;
  var s = 0u;
  for (var k = 0u; k < PER; k++) { s += HIST[base + li * PER + k]; }
  part[li] = s;
  workgroupBarrier();
  if (li != 0u) { return; }
  var total = 0u;
  for (var t = 0u; t < WG; t++) { total += part[t]; }
  var lo = 0u;
  var boundary = ${NO_BIN}u;
  var above = total;
  if (total > p.cap) {
    // From the top: whole chunks while they fit, then the bins of the chunk that crosses the capacity.
    var acc = 0u;
    var t = WG - 1u;
    while (acc + part[t] <= p.cap) { acc += part[t]; t--; }
    var bin = t * PER + PER - 1u;
    while (acc + HIST[base + bin] <= p.cap) { acc += HIST[base + bin]; bin--; }
    boundary = bin;
    lo = bin + 1u;
    above = acc;
  }
  let st = wid.x * ${STATE_WORDS}u;
  atomicStore(&ST[st + 2u], lo);
  atomicStore(&ST[st + 3u], boundary);
  atomicStore(&ST[st + 4u], total);
  atomicStore(&ST[st + 5u], above);`,
});

function levelUniforms(l: PeakLevel, o: PeakOptions) {
  const [B, C, h, w] = l.heat.shape;
  return { B, C, h, w, levelBase: l.levelBase, cap: o.capacity, stride: l.stride, imgW: o.imageWidth, imgH: o.imageHeight, thr: o.logitThreshold };
}

/** Pass 1: adds the level's candidates to `hist` (B × HISTOGRAM_BINS u32, zeroed before the first level). */
export function peakHistogramKernel(l: PeakLevel, o: PeakOptions, hist: Tensor): void {
  if (l.heat.size === 0) return;
  histogramProgram.dispatchFlat(l.heat.size, { H: l.heat.binding(), HIST: hist.binding() }, levelUniforms(l, o));
}

/** Pass 2: each image's boundary bin and totals into `state` (B × STATE_WORDS u32, zeroed). */
export function candidateCutoffKernel(hist: Tensor, state: Tensor, batch: number, capacity: number): void {
  cutoffProgram.dispatch({ HIST: hist.binding(), ST: state.binding() }, { cap: capacity }, [batch]);
}

/** Pass 3: decodes and appends the level's kept candidates into `candidates` (B × capacity × CANDIDATE_WORDS u32). */
export function peakAppendKernel(l: PeakLevel, o: PeakOptions, state: Tensor, candidates: Tensor): void {
  if (l.heat.size === 0) return;
  appendProgram.dispatchFlat(
    l.heat.size,
    { H: l.heat.binding(), S: l.size.binding(), O: l.offset.binding(), ST: state.binding(), CAND: candidates.binding() },
    levelUniforms(l, o),
  );
}
