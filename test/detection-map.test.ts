/**
 * Detection AP: hand-computed precision/recall cases, the matching rules (duplicates, IoU exactly at a threshold,
 * localisation quality across COCO thresholds), classes without truths, the maxDetections cut, score ties, and a
 * comparison with a deliberately naive implementation written here on random data.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Box } from '../src/io/boxes.ts';
import { boxIou, evaluateDetections, formatDetectionTable, type Detection, type DetectionScores, type ImageDetections } from '../src/metrics/detection-map.ts';
import { Rng } from '../src/util/rng.ts';

const t = suite('detection mAP');
const close = (actual: number, expected: number, what: string, tol = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

const box = (label: string, x0: number, y0: number, x1: number, y1: number): Box => ({ label, x0, y0, x1, y1 });
const det = (b: Box, score: number): Detection => ({ ...b, score });
const only = (s: DetectionScores, label: string) => {
  const c = s.classes.find((k) => k.label === label);
  assert.ok(c, `class ${label} missing`);
  return c!;
};

t('boxIou: continuous coordinates, no +1; disjoint and touching boxes give 0', () => {
  close(boxIou(box('a', 0, 0, 10, 10), box('a', 5, 0, 15, 10)), 50 / 150, 'half overlap');
  close(boxIou(box('a', 0, 0, 2, 2), box('a', 1, 1, 3, 3)), 1 / 7, 'corner overlap');
  assert.is(boxIou(box('a', 0, 0, 10, 10), box('a', 10, 0, 20, 10)), 0);
  assert.is(boxIou(box('a', 0, 0, 0, 10), box('a', 0, 0, 0, 10)), 0);
});

t('perfect detections: every AP is exactly 1', () => {
  const images: ImageDetections[] = [
    { truths: [box('car', 0, 0, 10, 10), box('person', 20, 20, 25, 40)], detections: [] },
    { truths: [box('car', 3, 4, 30, 18), box('car', 40, 40, 60, 70)], detections: [] },
    { truths: [], detections: [] },
  ];
  let score = 0.9;
  for (const im of images) im.detections = im.truths.map((b) => det(b, (score -= 0.1)));
  const s = evaluateDetections(images);
  assert.equal(s.classes.map((c) => c.label), ['car', 'person']);
  for (const c of s.classes) for (const k of ['ap50', 'ap75', 'ap', 'voc07'] as const) assert.is(c[k], 1, `${c.label} ${k}`);
  assert.equal([s.map50, s.map75, s.map], [1, 1, 1]);
  assert.equal(only(s, 'car').truths, 3);
  assert.equal(only(s, 'car').detections, 3);
});

t('no detections, or only misplaced ones: AP 0', () => {
  const truths = [box('car', 0, 0, 10, 10)];
  const none = evaluateDetections([{ truths, detections: [] }, { truths: [], detections: [] }]);
  assert.equal([none.map50, none.map75, none.map, none.classes[0].voc07], [0, 0, 0, 0]);
  // Right box in the wrong image, wrong class in the right image.
  const wrong = evaluateDetections([
    { truths, detections: [det(box('person', 0, 0, 10, 10), 0.9)] },
    { truths: [], detections: [det(box('car', 0, 0, 10, 10), 0.8)] },
  ]);
  assert.equal([wrong.map50, wrong.map, only(wrong, 'car').detections], [0, 0, 1]);
  assert.equal(wrong.classes.map((c) => c.label), ['car'], 'labels only seen in detections are not classes');
});

t('hand-computed PR curve: 2 truths, detections TP, FP, TP', () => {
  // Ranks: TP, FP, TP → precision 1, 1/2, 2/3; recall 1/2, 1/2, 1; envelope 1, 2/3, 2/3.
  // All-point: recall steps of 1/2 at ranks 1 and 3 → (1 + 2/3)/2 = 5/6.
  // 101-point: levels 0..0.50 (51 of them) first reached at rank 1 → 1; 0.51..1 (50) at rank 3 → 2/3:
  //   (51 + 50·2/3)/101 = 253/303. Boxes are exact, so every COCO threshold gives the same.
  // 11-point: 0..0.5 (6 levels) → 1, 0.6..1 (5 levels) → 2/3: (6 + 10/3)/11 = 28/33.
  const a = box('x', 0, 0, 10, 10);
  const b = box('x', 50, 50, 60, 80);
  const s = evaluateDetections([{ truths: [a, b], detections: [det(a, 0.9), det(box('x', 100, 100, 110, 110), 0.8), det(b, 0.7)] }]);
  const c = s.classes[0];
  close(c.ap50, 5 / 6, 'ap50');
  close(c.ap, 253 / 303, 'ap');
  close(c.ap75, 253 / 303, 'ap75');
  close(c.voc07!, 28 / 33, 'voc07');
});

t('hand-computed PR curve: FP first, recall stops at 1/2 or 1/3', () => {
  // 1 truth; FP then TP: precision 0, 1/2; envelope 1/2, 1/2; all-point 1/2; every 101 level → rank 2 (level 0
  // takes rank 1 whose envelope is also 1/2) → 1/2.
  const a = box('x', 0, 0, 10, 10);
  const fp = det(box('x', 30, 30, 40, 40), 0.9);
  const s1 = evaluateDetections([{ truths: [a], detections: [fp, det(a, 0.5)] }]);
  close(s1.classes[0].ap50, 1 / 2, 'ap50');
  close(s1.classes[0].ap, 1 / 2, 'ap');
  // 2 truths, one found at rank 1: all-point 1/2; 101-point: levels 0..0.50 → 1, the rest 0 → 51/101;
  // 11-point: 6/11.
  const s2 = evaluateDetections([{ truths: [a, box('x', 50, 50, 60, 60)], detections: [det(a, 0.5)] }]);
  close(s2.classes[0].ap50, 1 / 2, 'ap50');
  close(s2.classes[0].ap, 51 / 101, 'ap');
  close(s2.classes[0].voc07!, 6 / 11, 'voc07');
  // 3 truths, TP FP TP FP TP: precision 1, 1/2, 2/3, 1/2, 3/5; envelope 1, 2/3, 2/3, 3/5, 3/5.
  // All-point: (1 + 2/3 + 3/5)/3 = 34/45. 101-point: levels ≤ 0.33 (34) → 1; 0.34..0.66 (33) → 2/3;
  // 0.67..1 (34) → 3/5: (34 + 22 + 20.4)/101 = 76.4/101. 11-point: 0..0.3 (4) → 1, 0.4..0.6 (3) → 2/3,
  // 0.7..1 (4) → 3/5: (4 + 2 + 2.4)/11 = 8.4/11.
  const g = [a, box('x', 50, 50, 60, 60), box('x', 80, 0, 90, 10)];
  const miss = (i: number, score: number) => det(box('x', 200 + 20 * i, 0, 210 + 20 * i, 10), score);
  const s3 = evaluateDetections([{ truths: g, detections: [det(g[0], 0.9), miss(0, 0.8), det(g[1], 0.7), miss(1, 0.6), det(g[2], 0.5)] }]);
  close(s3.classes[0].ap50, 34 / 45, 'ap50');
  close(s3.classes[0].ap, 76.4 / 101, 'ap');
  close(s3.classes[0].voc07!, 8.4 / 11, 'voc07');
});

t('a duplicate detection is a false positive; a second hit may still take another unmatched truth', () => {
  // Truths A, B far apart; detections A (0.9), A again (0.8), B (0.7): TP, FP, TP → 5/6 as above.
  const a = box('x', 0, 0, 10, 10);
  const b = box('x', 50, 50, 60, 60);
  const s = evaluateDetections([{ truths: [a, b], detections: [det(a, 0.9), det(a, 0.8), det(b, 0.7)] }]);
  close(s.classes[0].ap50, 5 / 6, 'ap50');
  close(s.classes[0].ap, 253 / 303, 'ap');
  // A' overlaps A with IoU 90/110 ≈ 0.82: the duplicate of A takes A' (best unmatched), so both are TPs at
  // thresholds ≤ 0.80 and the duplicate is an FP at 0.85..0.95.
  const a2 = box('x', 1, 0, 11, 10);
  const s2 = evaluateDetections([{ truths: [a, a2], detections: [det(a, 0.9), det(a, 0.8)] }]);
  close(s2.classes[0].ap50, 1, 'ap50');
  // At 0.85..0.95: TP, FP with 2 truths → 51/101 each.
  close(s2.classes[0].ap, (7 + 3 * (51 / 101)) / 10, 'ap');
});

t('IoU exactly at a threshold matches; just below does not', () => {
  const truth = box('x', 0, 0, 10, 10);
  // IoU 50/100 = 0.5 exactly: TP at 0.5 only → COCO ap = 1/10.
  const at = evaluateDetections([{ truths: [truth], detections: [det(box('x', 0, 0, 5, 10), 1)] }]);
  assert.equal([at.classes[0].ap50, at.classes[0].voc07, at.classes[0].ap75], [1, 1, 0]);
  close(at.classes[0].ap, 1 / 10, 'ap');
  const below = evaluateDetections([{ truths: [truth], detections: [det(box('x', 0, 0, 4.999, 10), 1)] }]);
  assert.equal([below.map50, below.map], [0, 0]);
  // IoU 75/100 = 0.75 exactly: TP at 0.50..0.75 (6 thresholds).
  const at75 = evaluateDetections([{ truths: [truth], detections: [det(box('x', 0, 0, 10, 7.5), 1)] }]);
  assert.is(at75.map75, 1);
  close(at75.map, 6 / 10, 'ap');
});

t('COCO localisation: IoU 0.7 counts at 0.50..0.70, not above → ap = 5/10', () => {
  const s = evaluateDetections([{ truths: [box('x', 0, 0, 10, 10)], detections: [det(box('x', 0, 0, 7, 10), 0.3)] }]);
  close(boxIou(box('x', 0, 0, 10, 10), box('x', 0, 0, 7, 10)), 0.7, 'iou');
  assert.is(s.map50, 1);
  assert.is(s.map75, 0);
  close(s.map, 5 / 10, 'ap');
});

t('a class without truths gets NaN and is left out of the means', () => {
  const a = box('car', 0, 0, 10, 10);
  const images = [{ truths: [a], detections: [det(a, 0.9), det(box('ghost', 0, 0, 10, 10), 0.8), det(box('bus', 5, 5, 9, 9), 0.7)] }];
  const s = evaluateDetections(images, { classes: ['ghost', 'car', 'bus'] });
  assert.equal(s.classes.map((c) => c.label), ['ghost', 'car', 'bus']);
  for (const label of ['ghost', 'bus']) {
    const c = only(s, label);
    assert.equal([c.truths, c.detections], [0, 1]);
    for (const k of ['ap50', 'ap75', 'ap', 'voc07'] as const) assert.ok(Number.isNaN(c[k]), `${label} ${k}`);
  }
  assert.equal([s.map50, s.map75, s.map], [1, 1, 1]);
  // No class with truths at all: the means are NaN, not 0.
  const empty = evaluateDetections([], { classes: ['a'] });
  assert.ok(Number.isNaN(empty.map) && Number.isNaN(empty.map50));
  assert.equal(evaluateDetections([]).classes, []);
});

t('maxDetections: COCO keeps the top N per image and class; VOC keeps all', () => {
  // 1 truth; two higher-scoring FPs then the TP. VOC: precision 0, 0, 1/3 → ap50 = 1/3.
  const truth = box('x', 0, 0, 10, 10);
  const images = [{ truths: [truth], detections: [det(truth, 0.1), det(box('x', 20, 0, 30, 10), 0.9), det(box('x', 40, 0, 50, 10), 0.8)] }];
  const cut = evaluateDetections(images, { maxDetections: 2 });
  close(cut.map50, 1 / 3, 'ap50 (no cut)');
  assert.is(cut.map, 0, 'TP cut off');
  const kept = evaluateDetections(images, { maxDetections: 3 });
  close(kept.map, 1 / 3, 'ap (envelope 1/3 at every level)');
  close(evaluateDetections(images).map, 1 / 3, 'default 100');
  // The cut is per image (each image keeps its own top N) and per class (as COCOeval's maxDets).
  const two = [0, 1].map((i) => ({
    truths: [box('x', 0, 0, 10, 10), box('y', 20, 0, 30, 10)],
    detections: [det(box('x', 0, 0, 10, 10), 0.5 - i / 10), det(box('y', 20, 0, 30, 10), 0.5 - i / 10)],
  }));
  assert.is(evaluateDetections(two, { maxDetections: 1 }).map, 1);
  assert.throws(() => evaluateDetections(images, { maxDetections: 0 }), /positive integer/);
  assert.throws(() => evaluateDetections(images, { maxDetections: 1.5 }), /positive integer/);
});

t('equal scores keep input order: within an image and across images', () => {
  const truth = box('x', 0, 0, 10, 10);
  const fp = det(box('x', 50, 50, 60, 60), 0.5);
  // FP first → precision 0, 1/2 → 1/2; TP first → 1.
  close(evaluateDetections([{ truths: [truth], detections: [fp, det(truth, 0.5)] }]).map50, 1 / 2, 'FP first');
  assert.is(evaluateDetections([{ truths: [truth], detections: [det(truth, 0.5), fp] }]).map50, 1);
  close(evaluateDetections([{ truths: [], detections: [fp] }, { truths: [truth], detections: [det(truth, 0.5)] }]).map50, 1 / 2, 'FP image first');
  assert.is(evaluateDetections([{ truths: [truth], detections: [det(truth, 0.5)] }, { truths: [], detections: [fp] }]).map50, 1);
});

t('bad input is refused', () => {
  const b = box('x', 0, 0, 1, 1);
  assert.throws(() => evaluateDetections([{ truths: [b], detections: [det(b, NaN)] }]), /non-finite score/);
  assert.throws(() => evaluateDetections([{ truths: [box('x', 0, NaN, 1, 1)], detections: [] }]), /non-finite coordinate/);
  assert.throws(() => evaluateDetections([], { classes: ['a', 'a'] }), /listed twice/);
});

t('formatDetectionTable: aligned rows, a mean row, – for classes without truths', () => {
  const a = box('car', 0, 0, 10, 10);
  const s = evaluateDetections([{ truths: [a], detections: [det(a, 0.9)] }], { classes: ['car', 'pedestrian'] });
  const text = formatDetectionTable(s);
  const lines = text.split('\n');
  assert.match(lines[0], /^class\s+truths\s+dets\s+AP50\s+AP50-07\s+AP75\s+AP$/);
  const body = lines.filter((l) => /^(car|pedestrian|mean)\b/.test(l));
  assert.is(body.length, 3);
  assert.ok(new Set(lines.slice(0, 6).map((l) => l.length)).size === 1, `ragged table:\n${text}`);
  assert.match(body[0], /^car\s+1\s+1\s+1\.0000\s+1\.0000\s+1\.0000\s+1\.0000$/);
  assert.match(body[1], /^pedestrian\s+0\s+0\s+–\s+–\s+–\s+–$/);
  assert.match(body[2], /^mean\s+1\s+1\s+1\.0000/);
  assert.match(text, /no ground truth/);
});

// ---------------------------------------------------------------------------------------------------------------
// A deliberately naive reference: for every class and every threshold, rematch from scratch with freshly computed
// IoUs, per image in COCOeval's style (sort, cut, match), concatenate and re-sort; AP as the VOC devkit's mrec/mpre
// loop and COCO's recall-threshold lookup, each precision level a brute-force max.

function naiveIou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0));
  const iy = Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
  const inter = ix * iy;
  if (inter === 0) return 0;
  return inter / ((a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter);
}

/** Precision and recall along the global score order, for one class at one threshold. */
function naivePr(images: ImageDetections[], label: string, threshold: number, maxDet: number) {
  const all: Array<{ score: number; tp: boolean }> = [];
  for (const im of images) {
    const ds = im.detections.map((d, i) => ({ d, i })).filter((x) => x.d.label === label);
    ds.sort((p, q) => (p.d.score !== q.d.score ? q.d.score - p.d.score : p.i - q.i));
    const gts = im.truths.filter((g) => g.label === label);
    const used = gts.map(() => false);
    for (const { d } of ds.slice(0, maxDet)) {
      let m = -1;
      let best = threshold;
      for (let g = 0; g < gts.length; g++) {
        if (used[g]) continue;
        const o = naiveIou(d, gts[g]);
        if (o >= best) {
          best = o;
          m = g;
        }
      }
      if (m >= 0) used[m] = true;
      all.push({ score: d.score, tp: m >= 0 });
    }
  }
  const order = all.map((x, k) => ({ ...x, k })).sort((p, q) => (p.score !== q.score ? q.score - p.score : p.k - q.k));
  const npos = images.reduce((n, im) => n + im.truths.filter((g) => g.label === label).length, 0);
  const prec: number[] = [];
  const rec: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const x of order) {
    if (x.tp) tp++;
    else fp++;
    prec.push(tp / (tp + fp));
    rec.push(tp / npos);
  }
  return { prec, rec, npos };
}

function naiveVocAp(rec: number[], prec: number[]): number {
  const mrec = [0, ...rec, 1];
  const mpre = [0, ...prec, 0];
  for (let i = mpre.length - 1; i > 0; i--) mpre[i - 1] = Math.max(mpre[i - 1], mpre[i]);
  let ap = 0;
  for (let i = 1; i < mrec.length; i++) if (mrec[i] !== mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
  return ap;
}

/** Mean over recall levels of the best precision at any rank whose recall reaches the level. */
function naiveLevelsAp(rec: number[], prec: number[], levels: number[]): number {
  let s = 0;
  for (const r of levels) {
    let p = 0;
    for (let i = 0; i < rec.length; i++) if (rec[i] >= r) p = Math.max(p, prec[i]);
    s += p;
  }
  return s / levels.length;
}

function naiveEvaluate(images: ImageDetections[], classes: string[], maxDet: number) {
  const coco = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];
  const r101 = Array.from({ length: 101 }, (_, k) => k / 100);
  const r11 = Array.from({ length: 11 }, (_, k) => k / 10);
  return classes.map((label) => {
    const voc = naivePr(images, label, 0.5, Infinity);
    if (voc.npos === 0) return { label, ap50: NaN, voc07: NaN, ap75: NaN, ap: NaN };
    const perT = coco.map((thr) => {
      const { rec, prec } = naivePr(images, label, thr, maxDet);
      return naiveLevelsAp(rec, prec, r101);
    });
    return {
      label,
      ap50: naiveVocAp(voc.rec, voc.prec),
      voc07: naiveLevelsAp(voc.rec, voc.prec, r11),
      ap75: perT[5],
      ap: perT.reduce((a, b) => a + b, 0) / perT.length,
    };
  });
}

function randomImages(rng: Rng, count: number, labels: string[]): ImageDetections[] {
  const images: ImageDetections[] = [];
  for (let n = 0; n < count; n++) {
    const truths: Box[] = [];
    const detections: Detection[] = [];
    const nTruths = rng.int(6);
    for (let k = 0; k < nTruths; k++) {
      const x0 = rng.next() * 80;
      const y0 = rng.next() * 80;
      truths.push(box(labels[rng.int(labels.length)], x0, y0, x0 + 4 + rng.next() * 30, y0 + 4 + rng.next() * 30));
    }
    const jitter = (b: Box): Box => {
      const s = rng.next() * 0.4 * Math.min(b.x1 - b.x0, b.y1 - b.y0);
      const j = () => (rng.next() - 0.5) * s;
      return box(b.label, b.x0 + j(), b.y0 + j(), b.x1 + j(), b.y1 + j());
    };
    // Coarse scores so that ties are common.
    const score = () => rng.int(12) / 12;
    for (const g of truths) {
      if (rng.next() < 0.75) detections.push(det(jitter(g), score()));
      if (rng.next() < 0.25) detections.push(det(jitter(g), score())); // duplicate
      if (rng.next() < 0.1) detections.push(det(jitter({ ...g, label: labels[rng.int(labels.length)] }), score())); // maybe wrong class
    }
    for (let k = rng.int(4); k > 0; k--) {
      const x0 = rng.next() * 90;
      const y0 = rng.next() * 90;
      detections.push(det(box(labels[rng.int(labels.length)], x0, y0, x0 + 2 + rng.next() * 20, y0 + 2 + rng.next() * 20), score()));
    }
    // Shuffle, so that input order (the tie-break) is unrelated to truth order.
    for (let i = detections.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [detections[i], detections[j]] = [detections[j], detections[i]];
    }
    images.push({ truths, detections });
  }
  return images;
}

t('random data: agrees with the naive reference to 1e-12', () => {
  const labels = ['bike', 'car', 'person'];
  const rng = new Rng(20240611);
  let spread = 0;
  for (let trial = 0; trial < 6; trial++) {
    const images = randomImages(rng, 40, labels);
    if (trial === 0) images.push({ truths: [], detections: [] }, { truths: [box('car', 0, 0, 5, 5)], detections: [] });
    const maxDet = [100, 3, 1][trial % 3];
    const classes = trial === 5 ? [...labels, 'truck'] : labels;
    const s = evaluateDetections(images, { classes, maxDetections: maxDet });
    const ref = naiveEvaluate(images, classes, maxDet);
    for (const [i, r] of ref.entries()) {
      const c = s.classes[i];
      assert.is(c.label, r.label);
      for (const k of ['ap50', 'voc07', 'ap75', 'ap'] as const) {
        if (Number.isNaN(r[k])) assert.ok(Number.isNaN(c[k]!), `${r.label} ${k} should be NaN`);
        else close(c[k]!, r[k], `trial ${trial} maxDet ${maxDet} ${r.label} ${k}`);
        if (r[k] > 0.2 && r[k] < 0.95) spread++;
      }
    }
    const finite = ref.filter((r) => !Number.isNaN(r.ap));
    close(s.map, finite.reduce((a, r) => a + r.ap, 0) / finite.length, 'map');
    close(s.map50, finite.reduce((a, r) => a + r.ap50, 0) / finite.length, 'map50');
  }
  // The data must exercise the interesting range, not only 0 and 1.
  assert.ok(spread > 40, `only ${spread} APs strictly between 0.2 and 0.95`);
});

t.run();
