/**
 * CenterNet peak extraction (src/kernels/detection-peaks.ts): the three passes (histogram, capacity cutoff, append)
 * against float64 (src/check/reference/detection-peaks.ts) on random heads of two odd-sized levels — candidates,
 * boxes, keys and per-image state, with and without overflow — and, through the whole decode, thresholds, empty
 * heads and the capacity. NMS: nms.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertClose } from '../helpers/compare.ts';
import { assertSame, blank, decodeHost, release, setHeat, sigmoid, upload, type HostLevel } from '../helpers/detection.ts';
import { logitKey, refCandidateCutoff, refPeaks, type RefCandidate } from '../../src/check/reference/detection-peaks.ts';
import { refDetections } from '../../src/check/reference/nms.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { type DecodeOptions } from '../../src/model/detector/decode.ts';
import { CANDIDATE_WORDS, HISTOGRAM_BINS, STATE_WORDS, candidateCutoffKernel, peakAppendKernel, peakHistogramKernel, type PeakLevel } from '../../src/kernels/detection-peaks.ts';

const t = suite('detection-peaks');

const classNames = ['person', 'car', 'bus'];

/** Random logits (mostly below the threshold), log sizes and offsets of a (B, 3, h, w) level. */
function randomLevel(rng: Rng, B: number, h: number, w: number, stride: number): HostLevel {
  const heat = rng.normal(B * 3 * h * w, 1.5);
  for (let i = 0; i < heat.length; i++) heat[i] -= 1;
  return { shape: [B, 3, h, w], stride, heat, size: rng.uniform(B * 2 * h * w, -0.3, 1.3), offset: rng.uniform(B * 2 * h * w, -0.2, 1.2) };
}

/** The three peak passes over all levels: the per-image state and candidate records, read back. */
async function runPeaks(levels: HostLevel[], imageWidth: number, imageHeight: number, logitThreshold: number, capacity: number) {
  const B = levels[0].shape[0];
  const dev = upload(levels);
  const hist = Tensor.zeros([B, HISTOGRAM_BINS], 'u32');
  const state = Tensor.zeros([B, STATE_WORDS], 'u32');
  const candidates = Tensor.zeros([B, capacity, CANDIDATE_WORDS], 'u32');
  try {
    const po = { imageWidth, imageHeight, logitThreshold, capacity };
    let base = 0;
    const peakLevels: PeakLevel[] = dev.map((l) => {
      const p = { ...l, levelBase: base };
      base += l.heat.size / B;
      return p;
    });
    for (const l of peakLevels) peakHistogramKernel(l, po, hist);
    candidateCutoffKernel(hist, state, B, capacity);
    for (const l of peakLevels) peakAppendKernel(l, po, state, candidates);
    const words = await candidates.u32();
    return { state: await state.u32(), words, floats: new Float32Array(words.buffer, words.byteOffset, words.length) };
  } finally {
    for (const x of [hist, state, candidates]) x.dispose();
    release(dev);
  }
}

/** The candidate in slot s of image b, as the reference describes one. */
function record(r: { words: Uint32Array; floats: Float32Array }, b: number, capacity: number, s: number): RefCandidate & { logitKey: number } {
  const o = (b * capacity + s) * CANDIDATE_WORDS;
  const [x0, y0, x1, y1, score] = r.floats.subarray(o, o + 5);
  return { x0, y0, x1, y1, score, classIndex: r.words[o + 5], logitKey: r.words[o + 6], key: r.words[o + 7], heat: NaN };
}

function assertCandidates(got: Array<RefCandidate & { logitKey: number }>, want: RefCandidate[], what: string): void {
  got.sort((p, q) => p.key - q.key);
  assert.equal(got.map((c) => [c.key, c.classIndex, c.logitKey]), want.map((c) => [c.key, c.classIndex, logitKey(c.heat)]), `${what}: cells, classes and logit keys`);
  const flat = (cs: RefCandidate[]) => cs.flatMap((c) => [c.x0, c.y0, c.x1, c.y1, c.score]);
  assertClose(flat(got), flat(want), { rtol: 1e-5, atol: 1e-5, what: `${what}: boxes and scores` });
}

t('the three passes on random heads (B = 3, two odd-sized levels) match float64: every candidate, its box and keys, and the state', async () => {
  await gpu();
  const rng = new Rng(11);
  const levels = [randomLevel(rng, 3, 9, 11, 4), randomLevel(rng, 3, 5, 7, 8)];
  const [W, H, thr, cap] = [43, 37, Math.fround(-0.4), 512];
  const r = await runPeaks(levels, W, H, thr, cap);
  for (let b = 0; b < 3; b++) {
    const want = refPeaks(levels, b, { imageWidth: W, imageHeight: H, logitThreshold: thr });
    assert.ok(want.length > 10 && want.length < cap, `image ${b}: ${want.length} candidates`);
    // No overflow: every candidate from the front, no boundary bin.
    assert.equal([...r.state.subarray(b * STATE_WORDS, (b + 1) * STATE_WORDS)], [want.length, 0, 0, 0xffffffff, want.length, want.length, 0, 0], `image ${b}: state`);
    assertCandidates(Array.from({ length: want.length }, (_, s) => record(r, b, cap, s)), want, `image ${b}`);
  }
});

t('overflow: the bins above the boundary are kept whole, the boundary bin fills the remaining slots from the back', async () => {
  await gpu();
  const rng = new Rng(12);
  const levels = [randomLevel(rng, 2, 9, 11, 4), randomLevel(rng, 2, 5, 7, 8)];
  // Logits on a grid of 0.5: many candidates share a histogram bin (and plateaus give several peaks).
  for (const l of levels) for (let i = 0; i < l.heat.length; i++) l.heat[i] = Math.round(l.heat[i] * 2) / 2;
  const [W, H, thr] = [43, 37, Math.fround(-1)];
  // Capacities where the boundary bin takes every slot, some of them, or none.
  for (const cap of [5, 12, 20, 33]) {
    const r = await runPeaks(levels, W, H, thr, cap);
    for (let b = 0; b < 2; b++) {
      const all = refPeaks(levels, b, { imageWidth: W, imageHeight: H, logitThreshold: thr });
      const cut = refCandidateCutoff(all.map((c) => logitKey(c.heat)), cap);
      const what = `capacity ${cap}, image ${b}`;
      assert.ok(cut.total > cap, `${what}: ${cut.total} candidates overflow`);
      assert.equal([...r.state.subarray(b * STATE_WORDS, (b + 1) * STATE_WORDS)], [cut.above, cut.inBoundary, cut.lowestKeptBin, cut.boundaryBin, cut.total, cut.above, 0, 0], `${what}: state`);
      const bin = (c: RefCandidate) => logitKey(c.heat) >>> 16;
      // The front: exactly the candidates above the boundary bin.
      const front = Array.from({ length: cut.above }, (_, s) => record(r, b, cap, s));
      assertCandidates(front, all.filter((c) => bin(c) > cut.boundaryBin), `${what}, above the boundary`);
      // The back: as many boundary-bin candidates as fit (which ones depends on the GPU's timing).
      const back = Array.from({ length: cap - cut.above }, (_, k) => record(r, b, cap, cap - 1 - k));
      const inBin = all.filter((c) => bin(c) === cut.boundaryBin);
      assert.is(back.length, Math.min(cut.inBoundary, cap - cut.above));
      for (const c of back) {
        const same = inBin.find((d) => d.key === c.key);
        assert.ok(same, `${what}: slot of cell ${c.key} holds a boundary-bin candidate`);
        assertCandidates([c], [same], `${what}, boundary cell ${c.key}`);
      }
      assert.is(new Set(back.map((c) => c.key)).size, back.length, `${what}: no boundary candidate twice`);
    }
  }
});

t('zero candidates give empty lists', async () => {
  await gpu();
  const l = blank(2, 3, 5, 3, 4, -5, 0);
  const got = await decodeHost([l], { classNames, imageWidth: 12, imageHeight: 20 });
  assert.equal(got, { detections: [[], []], candidates: [0, 0], dropped: [0, 0] });
  // Peaks that exist but are all below the threshold.
  setHeat(l, 1, 2, 2, 1, 1);
  const below = await decodeHost([l], { classNames, imageWidth: 12, imageHeight: 20, scoreThreshold: sigmoid(1) + 1e-6 });
  assert.equal(below.detections, [[], []]);
  const at = await decodeHost([l], { classNames, imageWidth: 12, imageHeight: 20, scoreThreshold: sigmoid(1) - 1e-6 });
  assert.is(at.detections[1].length, 1);
});

t('capacity overflow keeps the best candidates and counts the dropped ones', async () => {
  await gpu();
  const rng = new Rng(7);
  // 30 isolated peaks (even x, y) with tiny disjoint boxes in image 0, 5 in image 1; capacity 12.
  const l = blank(2, 1, 11, 9, 4, -8, Math.log(0.2));
  const values = Array.from({ length: 30 }, (_, k) => 1 + 0.25 * k);
  for (let k = values.length - 1; k > 0; k--) {
    const j = rng.int(k + 1);
    [values[k], values[j]] = [values[j], values[k]];
  }
  let k = 0;
  for (let y = 0; y < 11; y += 2) for (let x = 0; x < 9; x += 2) setHeat(l, 0, 0, y, x, values[k++]);
  for (let x = 0; x < 9; x += 2) setHeat(l, 1, 0, 4, x, 1 + x);
  const o: DecodeOptions = { classNames: ['a'], imageWidth: 36, imageHeight: 44, maxCandidates: 12 };
  const got = await decodeHost([l], o);
  assert.equal(got.candidates, [30, 5]);
  assert.equal(got.dropped, [18, 0]);
  assertSame(got.detections, refDetections([l], o).dets, 'overflow');
  assert.is(got.detections[0].length, 12);

  // All 30 peaks equal: any 12 of them may be kept, in cell order; nothing breaks.
  for (let y = 0; y < 11; y += 2) for (let x = 0; x < 9; x += 2) setHeat(l, 0, 0, y, x, 1);
  const eq = await decodeHost([l], { ...o, maxCandidates: 12, maxDetections: 10 });
  assert.equal(eq.dropped, [18, 0]);
  const d = eq.detections[0];
  assert.is(d.length, 10);
  for (let i = 1; i < d.length; i++) assert.ok(d[i - 1].y0 < d[i].y0 || (d[i - 1].y0 === d[i].y0 && d[i - 1].x0 < d[i].x0), 'tied candidates in cell order');

  // Capacity 1 and maxDetections 0.
  const one = await decodeHost([l], { ...o, maxCandidates: 1 });
  assert.equal(one.detections.map((x) => x.length), [1, 1]);
  assert.equal(one.dropped, [29, 4]);
  assert.equal((await decodeHost([l], { ...o, maxDetections: 0 })).detections, [[], []]);
});

t.run();
