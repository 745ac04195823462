/**
 * Class-wise NMS (src/kernels/nms.ts): hand-made candidate buffers against float64 (src/check/reference/nms.ts) —
 * order by logit then cell key, class-wise suppression, maxDetections, capacities that are not powers of two,
 * overflowing images — and, through the whole decode, random heads, overlapping boxes, plateaus and ties.
 * The candidates themselves: detection-peaks.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Rng } from '../../src/util/rng.ts';
import { assertSame, blank, decodeHost, setHeat, sigmoid, type HostLevel } from '../helpers/detection.ts';
import { logitKey } from '../../src/check/reference/detection-peaks.ts';
import { iou64, refDetections, refNms, refRank, type RefNmsCandidate } from '../../src/check/reference/nms.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { type DecodeOptions } from '../../src/model/detector/decode.ts';
import { CANDIDATE_WORDS, STATE_WORDS } from '../../src/kernels/detection-peaks.ts';
import { OUT_HEADER_WORDS, OUT_RECORD_WORDS, nmsKernel } from '../../src/kernels/nms.ts';

const t = suite('nms');

const classNames = ['person', 'car', 'bus'];

type Candidate = RefNmsCandidate & { score: number };

/**
 * n random candidates of 3 classes with distinct cell keys, logits on a coarse grid (so that many tie), and boxes
 * whose same-class IoUs all lie at least 1e-5 from the threshold (float32 and float64 agree on every suppression).
 */
function randomCandidates(rng: Rng, n: number, iouThreshold: number): Candidate[] {
  for (let attempt = 0; attempt < 100; attempt++) {
    const keys = Array.from({ length: 4 * n }, (_, k) => k);
    for (let k = keys.length - 1; k > 0; k--) {
      const j = rng.int(k + 1);
      [keys[k], keys[j]] = [keys[j], keys[k]];
    }
    const cands = Array.from({ length: n }, (_, i) => {
      const [x0, y0] = [rng.next() * 60, rng.next() * 40];
      const [w, h] = [2 + rng.next() * 18, 2 + rng.next() * 18];
      const heat = Math.round(rng.normal(1)[0] * 4) / 4;
      return { x0: Math.fround(x0), y0: Math.fround(y0), x1: Math.fround(x0 + w), y1: Math.fround(y0 + h), classIndex: rng.int(3), heat, key: keys[i], score: Math.fround(sigmoid(heat)) };
    });
    let close = false;
    for (let i = 0; i < n && !close; i++)
      for (let j = i + 1; j < n && !close; j++) if (cands[i].classIndex === cands[j].classIndex && Math.abs(iou64(cands[i], cands[j]) - iouThreshold) < 1e-5) close = true;
    if (!close) return cands;
  }
  throw new Error('could not draw boxes away from the IoU threshold');
}

t('NMS of hand-made candidate buffers matches float64: order, class-wise suppression, maxDetections, odd capacities, overflow', async () => {
  await gpu();
  const rng = new Rng(31);
  // Per case: capacity, candidates found per image (more than the capacity: the buffer is full), maxDetections, IoU.
  const cases: Array<[number, number[], number, number]> = [
    [37, [37, 12, 0], 100, 0.5],
    [300, [300, 451], 20, 0.3],
    [300, [257, 3], 300, 0.7],
    [1, [5], 1, 0.5],
    [64, [64, 40], 0, 0.5],
  ];
  for (const [cap, totals, maxDet, iou] of cases) {
    const B = totals.length;
    const what = `capacity ${cap}, totals ${totals}, maxDetections ${maxDet}, IoU ${iou}`;
    const images = totals.map((total) => randomCandidates(rng, Math.min(total, cap), iou));
    const words = new Uint32Array(B * cap * CANDIDATE_WORDS);
    const floats = new Float32Array(words.buffer);
    const state = new Uint32Array(B * STATE_WORDS);
    images.forEach((cands, b) => {
      state[b * STATE_WORDS + 4] = totals[b];
      cands.forEach((c, s) => {
        const o = (b * cap + s) * CANDIDATE_WORDS;
        floats.set([c.x0, c.y0, c.x1, c.y1, c.score], o);
        words.set([c.classIndex, logitKey(c.heat), c.key], o + 5);
      });
    });
    const [ct, st] = [Tensor.fromArray(words, [B, cap, CANDIDATE_WORDS], 'u32'), Tensor.fromArray(state, [B, STATE_WORDS], 'u32')];
    const out = Tensor.zeros([B * OUT_HEADER_WORDS + B * maxDet * OUT_RECORD_WORDS], 'u32');
    nmsKernel(ct, st, out, B, cap, maxDet, iou);
    const got = await out.u32();
    for (const x of [ct, st, out]) x.dispose();
    images.forEach((cands, b) => {
      const kept = refNms(refRank(cands, cap), iou, maxDet);
      const n = cands.length;
      assert.equal([...got.subarray(b * OUT_HEADER_WORDS, (b + 1) * OUT_HEADER_WORDS)], [kept.length, totals[b], totals[b] - n, 0], `${what}: image ${b} header`);
      // Each kept record is a copy of its candidate's first six words: compare them exactly.
      const want = kept.flatMap((c) => {
        const o = (b * cap + cands.indexOf(c)) * CANDIDATE_WORDS;
        return [...words.subarray(o, o + OUT_RECORD_WORDS)];
      });
      const start = B * OUT_HEADER_WORDS + b * maxDet * OUT_RECORD_WORDS;
      assert.equal([...got.subarray(start, start + kept.length * OUT_RECORD_WORDS)], want, `${what}: image ${b} kept records`);
      if (maxDet >= 20 && n > 20) assert.ok(kept.length < n, `${what}: image ${b} suppresses something`);
    });
  }
});

t('random heads (B=2, C=3, two odd-sized levels) match the float64 reference', async () => {
  await gpu();
  let suppressed = 0;
  let total = 0;
  for (const seed of [1, 2, 3]) {
    const rng = new Rng(seed);
    const lv = (h: number, w: number, stride: number): HostLevel => {
      const heat = rng.normal(2 * 3 * h * w, 1.5);
      for (let i = 0; i < heat.length; i++) heat[i] -= 1;
      return { shape: [2, 3, h, w], stride, heat, size: rng.uniform(2 * 2 * h * w, -0.3, 1.3), offset: rng.uniform(2 * 2 * h * w, -0.2, 1.2) };
    };
    const levels = [lv(9, 11, 4), lv(5, 7, 8)];
    for (const extra of [{}, { maxDetections: 3, iouThreshold: 0.5 }]) {
      const o: DecodeOptions = { classNames, imageWidth: 43, imageHeight: 37, scoreThreshold: 0.3, iouThreshold: 0.25, ...extra };
      const got = await decodeHost(levels, o);
      const want = refDetections(levels, o);
      assertSame(got.detections, want.dets, `seed ${seed} ${JSON.stringify(extra)}`);
      assert.equal(got.candidates, want.candidates, 'candidate counts');
      assert.equal(got.dropped, [0, 0]);
      if (!('maxDetections' in extra)) {
        total += want.candidates[0] + want.candidates[1];
        suppressed += want.candidates[0] + want.candidates[1] - want.dets[0].length - want.dets[1].length;
      }
    }
  }
  // The case must exercise suppression and keep most boxes, or it would not test much.
  assert.ok(suppressed > 5 && suppressed < total / 2, `suppressed ${suppressed} of ${total}`);
});

t('overlapping boxes: same class → one kept, different classes → both kept', async () => {
  await gpu();
  const o: DecodeOptions = { classNames: ['a', 'b'], imageWidth: 36, imageHeight: 28 };
  for (const secondClass of [0, 1]) {
    const l = blank(1, 2, 7, 9, 4, -8, Math.log(8)); // 32-pixel boxes, centres 8 pixels apart: IoU ≈ 0.63
    setHeat(l, 0, 0, 3, 3, 3);
    setHeat(l, 0, secondClass, 3, 5, 2);
    const got = (await decodeHost([l], o)).detections[0];
    assertSame([got], refDetections([l], o).dets, `second class ${secondClass}`);
    assert.is(got.length, secondClass === 0 ? 1 : 2);
    assert.is(got[0].classIndex, 0);
    assert.ok(Math.abs(got[0].score - sigmoid(3)) < 1e-6);
    assert.ok(Math.abs(got[0].x0 - 0) < 1e-5 && Math.abs(got[0].x1 - 30) < 1e-5, 'clipped box of the better peak');
  }
});

t('plateaus and ties: every plateau cell is a peak, ties rank by level, class, y, x, deterministically', async () => {
  await gpu();
  const o: DecodeOptions = { classNames: ['a', 'b'], imageWidth: 72, imageHeight: 56 };
  const l0 = blank(1, 2, 7, 9, 4, -8, Math.log(8));
  setHeat(l0, 0, 0, 3, 3, 2); // a plateau of two cells: one box survives, the one at x = 3
  setHeat(l0, 0, 0, 3, 4, 2);
  setHeat(l0, 0, 1, 3, 3, 2); // the same cell in class 1: kept, after class 0
  const l1 = blank(1, 2, 7, 9, 8, -8, Math.log(2));
  setHeat(l1, 0, 0, 5, 7, 2); // far away on the coarser level: kept, last
  setHeat(l1, 0, 0, 1, 1, 2.5); // the best: first
  const runs = [];
  for (let r = 0; r < 3; r++) runs.push((await decodeHost([l0, l1], o)).detections[0]);
  assertSame([runs[0]], refDetections([l0, l1], o).dets, 'ties');
  assert.equal(
    runs[0].map((d) => [d.classIndex, Math.round(d.x0 * 1e3) / 1e3, Math.round(d.x1 * 1e3) / 1e3]),
    [
      [0, 4, 20], // level 1 (1, 1): centre 12, size 16
      [0, 0, 30], // level 0 class 0 (3, 3): centre 14, size 32, clipped
      [1, 0, 30], // level 0 class 1 (3, 3)
      [0, 52, 68], // level 1 (5, 7): centre 60, size 16
    ],
  );
  assert.equal(runs[1], runs[0]);
  assert.equal(runs[2], runs[0]);
});

t.run();
