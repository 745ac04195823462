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
import { engine } from '../tensor/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Params } from '../runtime/params.ts';
import { grid1d, ceilDiv } from './wgsl.ts';

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

const PARAMS = /* wgsl */ `
struct P { B: u32, C: u32, h: u32, w: u32, levelBase: u32, cap: u32, _a: u32, _b: u32,
  stride: f32, imgW: f32, imgH: f32, thr: f32 }`;

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
}
fn cell_index(wid: vec3u, nwg: vec3u, li: u32) -> u32 { return (wid.x + wid.y * nwg.x) * ${WG}u + li; }`;

const histogramCode = /* wgsl */ `${PARAMS}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read_write> HIST: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: P;
${PEAK_TEST}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = cell_index(wid, nwg, li);
  if (i >= p.B * p.C * p.h * p.w || !is_peak(i)) { return; }
  let b = i / (p.C * p.h * p.w);
  atomicAdd(&HIST[b * ${HISTOGRAM_BINS}u + (logit_key(H[i]) >> 16u)], 1u);
}`;

const appendCode = /* wgsl */ `${PARAMS}
@group(0) @binding(0) var<storage, read> H: array<f32>;
@group(0) @binding(1) var<storage, read> S: array<f32>;
@group(0) @binding(2) var<storage, read> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> ST: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> CAND: array<u32>;
@group(0) @binding(5) var<uniform> p: P;
${PEAK_TEST}
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = cell_index(wid, nwg, li);
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
  CAND[o + 7u] = p.levelBase + r;
}`;

const cutoffCode = /* wgsl */ `
const BINS = ${HISTOGRAM_BINS}u;
const WG = ${WG}u;
const PER = BINS / WG;
struct P { cap: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<storage, read> HIST: array<u32>;
@group(0) @binding(1) var<storage, read_write> ST: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> part: array<u32, WG>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
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
  atomicStore(&ST[st + 5u], above);
}`;

function levelParams(l: PeakLevel, o: PeakOptions): Uint8Array {
  const [B, C, h, w] = l.heat.shape;
  return new Params()
    .u32(B, C, h, w, l.levelBase, o.capacity, 0, 0)
    .f32(l.stride, o.imageWidth, o.imageHeight, o.logitThreshold).bytes;
}

function cellGrid(l: PeakLevel): [number, number, number] {
  return grid1d(ceilDiv(l.heat.size, WG));
}

/** Pass 1: adds the level's candidates to `hist` (B × HISTOGRAM_BINS u32, zeroed before the first level). */
export function peakHistogramKernel(l: PeakLevel, o: PeakOptions, hist: Tensor): void {
  if (l.heat.size === 0) return;
  engine().rt.dispatch({
    label: 'detection_peak_histogram',
    code: histogramCode,
    buffers: [l.heat.binding(), hist.binding()],
    params: levelParams(l, o),
    workgroups: cellGrid(l),
  });
}

/** Pass 2: each image's boundary bin and totals into `state` (B × STATE_WORDS u32, zeroed). */
export function candidateCutoffKernel(hist: Tensor, state: Tensor, batch: number, capacity: number): void {
  engine().rt.dispatch({
    label: 'detection_candidate_cutoff',
    code: cutoffCode,
    buffers: [hist.binding(), state.binding()],
    params: new Params().u32(capacity, 0, 0, 0).bytes,
    workgroups: [batch],
  });
}

/** Pass 3: decodes and appends the level's kept candidates into `candidates` (B × capacity × CANDIDATE_WORDS u32). */
export function peakAppendKernel(l: PeakLevel, o: PeakOptions, state: Tensor, candidates: Tensor): void {
  if (l.heat.size === 0) return;
  engine().rt.dispatch({
    label: 'detection_peak_append',
    code: appendCode,
    buffers: [l.heat.binding(), l.size.binding(), l.offset.binding(), state.binding(), candidates.binding()],
    params: levelParams(l, o),
    workgroups: cellGrid(l),
  });
}
