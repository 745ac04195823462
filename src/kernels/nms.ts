/**
 * Greedy class-wise non-maximum suppression of each image's candidates (see detection-peaks.ts for the record
 * layout), one workgroup per image. The candidates are bitonic-sorted in workgroup memory by logit descending,
 * ties by the unique cell key ascending, so the order does not depend on the atomic append order. Then, in
 * that order, each candidate not yet suppressed is kept and the threads suppress in parallel every later
 * candidate of the same class whose IoU with it exceeds the threshold, until maxDetections are kept.
 *
 * Output (u32): a header of OUT_HEADER_WORDS per image (kept, total candidates found, dropped for lack of
 * capacity, 0), then per image maxDetections records of OUT_RECORD_WORDS: x0, y0, x1, y1, score (f32 bits), class.
 */
import { engine } from '../tensor/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { Program, program, type ProgramSpec } from './program.ts';
import { CANDIDATE_WORDS, STATE_WORDS } from './detection-peaks.ts';

export const OUT_HEADER_WORDS = 4;
export const OUT_RECORD_WORDS = 6;

const WG = 256;
/** Workgroup bytes per sorted element: logit key, cell key, slot. */
const BYTES_PER_ELEMENT = 12;

export function sortSize(capacity: number): number {
  let n = 1;
  while (n < capacity) n *= 2;
  return n;
}

/** The largest candidate capacity whose sort fits the device's workgroup memory. */
export function maxCandidateCapacity(): number {
  const bytes = engine().rt.limits.maxComputeWorkgroupStorageSize;
  let n = 1;
  while (2 * n * BYTES_PER_ELEMENT + 16 <= bytes) n *= 2;
  return n;
}

/** One workgroup per image; `n`: the sort size (a power of two ≥ the capacity). */
function nmsProgram(n: number): Program {
  return program(`nms ${n}`, () => nmsProgramSpec(n));
}

function nmsProgramSpec(n: number): ProgramSpec {
  return {
    name: 'detection_nms',
    inputs: { CAND: 'u32', ST: 'u32' },
    outputs: { OUT: 'u32' },
    uniforms: { cap: 'u32', maxDet: 'u32', iou: 'f32', B: 'u32' },
    workgroupSize: WG,
    header: /* wgsl */ `
const N = ${n}u;
const WG = ${WG}u;
var<workgroup> sk: array<u32, N>;  // logit key while sorting, then the suppressed flag
var<workgroup> tk: array<u32, N>;  // cell key
var<workgroup> id: array<u32, N>;  // slot in the candidate buffer
var<workgroup> nCand: u32;

// Whether sorted element a goes before b.
fn before(a: u32, b: u32) -> bool {
  return sk[a] > sk[b] || (sk[a] == sk[b] && tk[a] < tk[b]);
}

fn box_of(b: u32, slot: u32) -> vec4f {
  let o = (b * p.cap + slot) * ${CANDIDATE_WORDS}u;
  return bitcast<vec4f>(vec4u(CAND[o], CAND[o + 1u], CAND[o + 2u], CAND[o + 3u]));
}
fn class_of(b: u32, slot: u32) -> u32 { return CAND[(b * p.cap + slot) * ${CANDIDATE_WORDS}u + 5u]; }

fn iou(a: vec4f, c: vec4f) -> f32 {
  let iw = max(min(a.z, c.z) - max(a.x, c.x), 0.0);
  let ih = max(min(a.w, c.w) - max(a.y, c.y), 0.0);
  let inter = iw * ih;
  let uni = (a.z - a.x) * (a.w - a.y) + (c.z - c.x) * (c.w - c.y) - inter;
  return select(0.0, inter / uni, uni > 0.0);
}`,
    body: /* wgsl */ `
  let b = wid.x;
  let total = ST[b * ${STATE_WORDS}u + 4u];
  let n = min(total, p.cap);
  if (li == 0u) { nCand = n; }
  for (var i = li; i < N; i += WG) {
    let o = (b * p.cap + i) * ${CANDIDATE_WORDS}u;
    // Empty slots sort last: key 0 is below every logit's key.
    sk[i] = select(0u, CAND[o + 6u], i < n);
    tk[i] = select(0xffffffffu, CAND[o + 7u], i < n);
    id[i] = i;
  }
  workgroupBarrier();
  for (var k = 2u; k <= N; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = li; i < N; i += WG) {
        let l = i ^ j;
        if (l > i && select(before(i, l), before(l, i), (i & k) == 0u)) {
          let s = sk[i]; sk[i] = sk[l]; sk[l] = s;
          let t = tk[i]; tk[i] = tk[l]; tk[l] = t;
          let d = id[i]; id[i] = id[l]; id[l] = d;
        }
      }
      workgroupBarrier();
    }
  }
  for (var i = li; i < N; i += WG) { sk[i] = 0u; }
  let m = workgroupUniformLoad(&nCand);
  var kept = 0u;
  for (var i = 0u; i < m; i++) {
    if (kept >= p.maxDet) { break; }
    // The barrier inside makes the previous round's suppressions visible.
    if (workgroupUniformLoad(&sk[i]) != 0u) { continue; }
    let a = box_of(b, id[i]);
    let ca = class_of(b, id[i]);
    if (li == 0u) {
      let o = p.B * ${OUT_HEADER_WORDS}u + (b * p.maxDet + kept) * ${OUT_RECORD_WORDS}u;
      let src = (b * p.cap + id[i]) * ${CANDIDATE_WORDS}u;
      for (var w = 0u; w < 6u; w++) { OUT[o + w] = CAND[src + w]; }
    }
    kept++;
    for (var j = i + 1u + li; j < m; j += WG) {
      if (sk[j] == 0u && class_of(b, id[j]) == ca && iou(a, box_of(b, id[j])) > p.iou) { sk[j] = 1u; }
    }
  }
  if (li == 0u) {
    let h = b * ${OUT_HEADER_WORDS}u;
    OUT[h] = kept;
    OUT[h + 1u] = total;
    OUT[h + 2u] = total - n;
    OUT[h + 3u] = 0u;
  }`,
  };
}

/**
 * NMS over `candidates` (B × capacity × CANDIDATE_WORDS) with the totals in `state`, into `out`
 * (B·OUT_HEADER_WORDS + B·maxDetections·OUT_RECORD_WORDS u32).
 */
export function nmsKernel(candidates: Tensor, state: Tensor, out: Tensor, batch: number, capacity: number, maxDetections: number, iouThreshold: number): void {
  const max = maxCandidateCapacity();
  if (capacity > max) throw new LimitError(`NMS: ${capacity} candidates per image exceed the ${max} whose sort fits this device's workgroup memory`);
  nmsProgram(sortSize(capacity)).dispatch(
    { CAND: candidates.binding(), ST: state.binding(), OUT: out.binding() },
    { cap: capacity, maxDet: maxDetections, iou: iouThreshold, B: batch },
    [batch],
  );
}
