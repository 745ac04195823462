/** GPU decoding of the detection head (peaks, capacity, sort, class-wise NMS) against a float64 CPU reference. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from './helpers/random.ts';
import { assertClose } from './helpers/compare.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { decodeDetections, decodeDetectionsWithStats, logitThreshold, type DecodeOptions, type Detection, type HeadLevel } from '../src/model/detector/decode.ts';

const t = suite('detection-decode');

interface HostLevel {
  shape: [number, number, number, number]; // B, C, h, w
  stride: number;
  heat: Float32Array;
  size: Float32Array;
  offset: Float32Array;
}

interface RefDetection extends Detection {
  key: number;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Peaks, ranking by (score desc, level/class/y/x asc), the top maxCandidates, greedy class-wise NMS; float64. */
function reference(levels: HostLevel[], o: DecodeOptions): { dets: RefDetection[][]; candidates: number[] } {
  const { scoreThreshold = 0.1, iouThreshold = 0.5, maxCandidates = 1024, maxDetections = 100 } = o;
  const B = levels[0].shape[0];
  const dets: RefDetection[][] = [];
  const candidates: number[] = [];
  for (let b = 0; b < B; b++) {
    const cands: Array<RefDetection & { heat: number }> = [];
    let base = 0;
    for (const l of levels) {
      const [, C, h, w] = l.shape;
      const s = l.stride;
      const at = (c: number, y: number, x: number) => l.heat[((b * C + c) * h + y) * w + x];
      const pl = (a: Float32Array, k: number, y: number, x: number) => a[((b * 2 + k) * h + y) * w + x];
      for (let c = 0; c < C; c++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++) {
            const v = at(c, y, x);
            if (!(sigmoid(v) >= scoreThreshold)) continue;
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
            const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
            cands.push({
              label: o.classNames[c],
              classIndex: c,
              score: sigmoid(v),
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
    candidates.push(cands.length);
    cands.sort((p, q) => q.heat - p.heat || p.key - q.key);
    const ranked = cands.slice(0, maxCandidates);
    const kept: RefDetection[] = [];
    const gone = new Array(ranked.length).fill(false);
    for (let i = 0; i < ranked.length && kept.length < maxDetections; i++) {
      if (gone[i]) continue;
      kept.push(ranked[i]);
      for (let j = i + 1; j < ranked.length; j++) if (ranked[j].classIndex === ranked[i].classIndex && iou(ranked[i], ranked[j]) > iouThreshold) gone[j] = true;
    }
    dets.push(kept);
  }
  return { dets, candidates };
}

function iou(a: Detection, b: Detection): number {
  const iw = Math.max(Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), 0);
  const ih = Math.max(Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0), 0);
  const inter = iw * ih;
  const union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return union > 0 ? inter / union : 0;
}

function upload(levels: HostLevel[]): HeadLevel[] {
  return levels.map((l) => {
    const [B, , h, w] = l.shape;
    return {
      heat: Tensor.fromArray(l.heat, l.shape),
      size: Tensor.fromArray(l.size, [B, 2, h, w]),
      offset: Tensor.fromArray(l.offset, [B, 2, h, w]),
      stride: l.stride,
    };
  });
}

function release(levels: HeadLevel[]): void {
  for (const l of levels) for (const x of [l.heat, l.size, l.offset]) x.dispose();
}

async function decodeHost(levels: HostLevel[], o: DecodeOptions) {
  const dev = upload(levels);
  try {
    return await decodeDetectionsWithStats(dev, o);
  } finally {
    release(dev);
  }
}

function assertSame(got: Detection[][], want: Detection[][], what: string): void {
  assert.is(got.length, want.length, `${what}: images`);
  got.forEach((g, b) => {
    assert.is(g.length, want[b].length, `${what}: image ${b} detection count`);
    assert.equal(
      g.map((d) => [d.classIndex, d.label]),
      want[b].map((d) => [d.classIndex, d.label]),
      `${what}: image ${b} classes`,
    );
    const flat = (ds: Detection[]) => ds.flatMap((d) => [d.x0, d.y0, d.x1, d.y1, d.score]);
    assertClose(flat(g), flat(want[b]), { rtol: 1e-4, atol: 1e-4, what: `${what}: image ${b} boxes and scores` });
  });
}

/** A level filled with `fill` logits, zero offsets and the given log-size, to be edited by the constructed cases. */
function blank(B: number, C: number, h: number, w: number, stride: number, fill: number, logSize: number): HostLevel {
  return {
    shape: [B, C, h, w],
    stride,
    heat: new Float32Array(B * C * h * w).fill(fill),
    size: new Float32Array(B * 2 * h * w).fill(logSize),
    offset: new Float32Array(B * 2 * h * w).fill(0.5),
  };
}

const setHeat = (l: HostLevel, b: number, c: number, y: number, x: number, v: number) => {
  const [, C, h, w] = l.shape;
  l.heat[((b * C + c) * h + y) * w + x] = v;
};

const classNames = ['person', 'car', 'bus'];

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
      const want = reference(levels, o);
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
    assertSame([got], reference([l], o).dets, `second class ${secondClass}`);
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
  assertSame([runs[0]], reference([l0, l1], o).dets, 'ties');
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
  assertSame(got.detections, reference([l], o).dets, 'overflow');
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

t('the score threshold becomes an exact logit threshold', async () => {
  for (const s of [0.1, 0.3, 0.5, 0.7311, 0.999, 1e-7]) {
    const th = logitThreshold(s);
    assert.is(Math.fround(th), th);
    assert.ok(sigmoid(th) >= s - 1e-15, `logit(${s}) = ${th} is too low`);
    const below = new Float32Array([th]);
    const bits = new Int32Array(below.buffer);
    if (th === 0) below[0] = -1.401298464324817e-45;
    else bits[0] += th > 0 ? -1 : 1;
    assert.ok(sigmoid(below[0]) < s + 1e-15, `logit(${s}) = ${th} is too high`);
  }
});

t('the public wrapper returns the detections and checks shapes', async () => {
  await gpu();
  const l = blank(1, 2, 3, 3, 2, -8, 0);
  setHeat(l, 0, 1, 1, 1, 0);
  const dev = upload([l]);
  try {
    const d = await decodeDetections(dev, { classNames: ['a', 'b'], imageWidth: 6, imageHeight: 6 });
    assert.equal(d.map((x) => x.map((y) => [y.label, y.classIndex])), [[['b', 1]]]);
    assertClose([d[0][0].x0, d[0][0].y0, d[0][0].x1, d[0][0].y1, d[0][0].score], [2, 2, 4, 4, 0.5], { atol: 1e-6, rtol: 1e-6 });
    let threw = false;
    await decodeDetections(dev, { classNames: ['a'], imageWidth: 6, imageHeight: 6 }).catch(() => (threw = true));
    assert.ok(threw, 'a class count that does not match the heat map is rejected');
  } finally {
    release(dev);
  }
});

t.run();
