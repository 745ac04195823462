/** Synthetic infrared/visible scenes: determinism, box geometry, warm objects, the written dataset and `moefusion synth`. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputError } from '../src/io/atomic.ts';
import { EXIT_USAGE, EXIT_USER } from '../src/cli/errors.ts';
import { boxMask, type Box } from '../src/io/boxes.ts';
import { openDataset } from '../src/io/dataset.ts';
import { readImage } from '../src/io/image.ts';
import {
  roundBoxOutwards,
  SYNTHETIC_CLASSES,
  syntheticDatasetScene,
  syntheticScene,
  writeSyntheticDataset,
} from '../src/train/synthetic-scenes.ts';
import { ours, sh } from './helpers/cli.ts';
import { assertRejects } from './helpers/throws.ts';

const t = suite('synthetic-scenes');
const tmp = mkdtempSync(join(tmpdir(), 'moefusion-synth-'));

const area = (b: Box) => (b.x1 - b.x0) * (b.y1 - b.y0);
function iou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0));
  const ih = Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
  return (iw * ih) / (area(a) + area(b) - iw * ih);
}

function mean(values: Float32Array, mask: Float32Array, want: number): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++)
    if (mask[i] === want) {
      s += values[i];
      n++;
    }
  return s / n;
}

t('the same seed gives the same scene; other seeds give other scenes', () => {
  const opts = { width: 61, height: 47 };
  const a = syntheticScene(7, opts);
  const b = syntheticScene(7, opts);
  assert.equal(a.boxes, b.boxes);
  assert.ok(a.ir.every((v, i) => v === b.ir[i]) && a.vis.every((v, i) => v === b.vis[i]), 'identical pixels');
  assert.is(a.ir.length, 61 * 47);
  assert.is(a.vis.length, 61 * 47);
  // 0 and 1 (a naive generator maps both to state 1), neighbours, and seeds that differ only above 32 bits.
  for (const [s1, s2] of [[0, 1], [7, 8], [5, 5 + 2 ** 32], [-1, 1]]) {
    const x = syntheticScene(s1, opts);
    const y = syntheticScene(s2, opts);
    assert.ok(x.ir.some((v, i) => v !== y.ir[i]), `seeds ${s1} and ${s2} give different infrared images`);
    assert.ok(x.vis.some((v, i) => v !== y.vis[i]), `seeds ${s1} and ${s2} give different visible images`);
  }
  assert.throws(() => syntheticScene(1.5, opts), /integer/);
});

t('boxes lie inside the image, have the requested sizes and class shapes, and barely overlap', () => {
  const cases = [
    { width: 128, height: 128 }, // defaults: sizes 10..40
    { width: 97, height: 71, minSize: 12, maxSize: 30, maxObjects: 8 },
    { width: 40, height: 200, minSize: 6, maxSize: 40, maxObjects: 3 },
  ];
  const seen = new Map<string, number>();
  let several = 0;
  for (const opts of cases) {
    const minSize = opts.minSize ?? 10;
    const maxSize = opts.maxSize ?? 40;
    const maxObjects = opts.maxObjects ?? 5;
    for (let seed = 0; seed < 40; seed++) {
      const { ir, vis, boxes } = syntheticScene(seed, opts);
      assert.ok(boxes.length >= 1 && boxes.length <= maxObjects, `seed ${seed}: ${boxes.length} objects`);
      if (boxes.length > 1) several++;
      for (const v of [ir, vis]) assert.ok(v.every((x) => x >= 0 && x <= 1), 'gray values in [0, 1]');
      for (const b of boxes) {
        const what = `seed ${seed} ${JSON.stringify(b)}`;
        assert.ok(SYNTHETIC_CLASSES.includes(b.label as (typeof SYNTHETIC_CLASSES)[number]), what);
        seen.set(b.label, (seen.get(b.label) ?? 0) + 1);
        assert.ok(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= opts.width && b.y1 <= opts.height, `inside: ${what}`);
        const w = b.x1 - b.x0;
        const h = b.y1 - b.y0;
        const side = Math.max(w, h);
        assert.ok(side >= minSize - 1e-9 && side <= maxSize + 1e-9, `size ${side} in ${minSize}..${maxSize}: ${what}`);
        const aspect = w / h;
        if (b.label === 'People') assert.ok(aspect >= 0.35 - 1e-9 && aspect <= 0.5 + 1e-9, `upright: ${what}`);
        else assert.ok(aspect >= 1.6 - 1e-9 && aspect <= 2.5 + 1e-9, `wide: ${what}`);
      }
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) assert.ok(iou(boxes[i], boxes[j]) < 0.1, `seed ${seed}: boxes ${i} and ${j} overlap`);
    }
  }
  assert.ok((seen.get('People') ?? 0) > 20 && (seen.get('Car') ?? 0) > 20, `both classes: ${[...seen]}`);
  assert.ok(several > 40, 'many scenes have several objects');
  // Empty scenes only when asked for; impossible sizes are refused.
  const counts = Array.from({ length: 30 }, (_, s) => syntheticScene(s, { width: 64, height: 64, minObjects: 0, maxObjects: 2 }).boxes.length);
  assert.ok(counts.includes(0) && counts.some((n) => n > 0), `0..2 objects: ${counts}`);
  assert.throws(() => syntheticScene(0, { width: 32, height: 32, minSize: 10, maxSize: 40 }), /does not fit/);
  assert.throws(() => syntheticScene(0, { width: 64, height: 64, minSize: 20, maxSize: 10 }), /minSize/);
});

t('objects are warm in the infrared; some are hard to see in the visible image', () => {
  const W = 96;
  const H = 96;
  const gaps: number[] = [];
  let objects = 0;
  let warmer = 0;
  let hidden = 0;
  for (let seed = 100; seed < 140; seed++) {
    const { ir, vis, boxes } = syntheticScene(seed, { width: W, height: H });
    const inBoxes = boxMask(boxes, W, H);
    gaps.push(mean(ir, inBoxes, 1) - mean(ir, inBoxes, 0));
    for (const b of boxes) {
      // Each box against a 3-pixel ring around it that is outside every box.
      const inner = boxMask([b], W, H);
      const ring = boxMask([{ ...b, x0: b.x0 - 3, y0: b.y0 - 3, x1: b.x1 + 3, y1: b.y1 + 3 }], W, H).map((v, i) => (v && !inBoxes[i] ? 1 : 0));
      if (!ring.some((v) => v)) continue;
      objects++;
      const irGap = mean(ir, inner, 1) - mean(ir, ring, 1);
      if (irGap > 0.03) warmer++;
      if (irGap > 0.08 && Math.abs(mean(vis, inner, 1) - mean(vis, ring, 1)) < 0.03) hidden++;
    }
  }
  const sorted = [...gaps].sort((a, b) => a - b);
  assert.ok(sorted[0] > 0.05, `every scene: mean infrared in the boxes above the rest (smallest gap ${sorted[0]})`);
  assert.ok(sorted[sorted.length >> 1] > 0.1, `median gap ${sorted[sorted.length >> 1]}`);
  assert.ok(warmer >= 0.9 * objects, `${warmer} of ${objects} objects warmer than their surroundings`);
  assert.ok(hidden >= 0.1 * objects, `${hidden} of ${objects} objects carried by the infrared alone`);
});

t('a 640×480 scene takes well under a second', () => {
  syntheticScene(1, { width: 128, height: 128 });
  const started = performance.now();
  syntheticScene(2, { width: 640, height: 480 });
  const ms = performance.now() - started;
  assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
});

t('the written dataset reads back through openDataset with the same boxes and images', async () => {
  const dir = join(tmp, 'ds');
  const opts = { count: 5, width: 41, height: 33, seed: 9, minSize: 6, maxSize: 20 };
  const done: number[] = [];
  const summary = await writeSyntheticDataset(dir, { ...opts, onImage: (k, total) => done.push(k, total) });
  assert.equal(done, [1, 5, 2, 5, 3, 5, 4, 5, 5, 5]);
  assert.equal(readdirSync(dir).sort(), ['Annotation', 'Ir', 'Vis'], 'no staging folder left');
  const ds = openDataset(dir);
  assert.equal(ds.pairs.map((p) => p.name), ['00000', '00001', '00002', '00003', '00004']);
  assert.ok(ds.boxes, 'the Annotation folder is found');
  assert.is(ds.boxes!.format, 'voc');
  const counts: Record<string, number> = { People: 0, Car: 0 };
  for (const [k, pair] of ds.pairs.entries()) {
    const scene = syntheticDatasetScene(opts.seed, k, opts);
    for (const b of scene.boxes) counts[b.label]++;
    assert.equal(ds.boxes!.read(pair.name, { width: opts.width, height: opts.height }), scene.boxes.map(roundBoxOutwards), `boxes of ${pair.name}`);
    for (const [file, values] of [[pair.ir, scene.ir], [pair.vi, scene.vis]] as const) {
      const img = await readImage(file);
      assert.equal([img.width, img.height, img.channels, img.bitDepth], [opts.width, opts.height, 1, 8], file);
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(img.data[i] / 255 - values[i]));
      assert.ok(worst <= 0.5 / 255 + 1e-6, `${file}: off by ${worst}`);
    }
  }
  assert.equal(summary.objects, counts);
});

/** The error a promise rejects with; fails the test if it resolves. */
const rejection = (p: Promise<unknown>) => assertRejects(() => p, /(?:)/);

t('a non-empty target is refused untouched; a failure leaves nothing behind', async () => {
  const full = join(tmp, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'keep.txt'), 'mine');
  const opts = { count: 2, width: 32, height: 32, seed: 1 };
  assert.instance(await rejection(writeSyntheticDataset(full, opts)), OutputError);
  assert.match((await rejection(writeSyntheticDataset(full, opts))).message, /not empty/);
  assert.equal(readdirSync(full), ['keep.txt']);
  assert.is(readFileSync(join(full, 'keep.txt'), 'utf8'), 'mine');

  const fail = (k: number) => {
    if (k === 2) throw new Error('interrupted');
  };
  const fresh = join(tmp, 'fresh');
  assert.is((await rejection(writeSyntheticDataset(fresh, { ...opts, count: 4, onImage: fail }))).message, 'interrupted');
  assert.not.ok(existsSync(fresh), 'a new folder is removed again');
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  assert.is((await rejection(writeSyntheticDataset(empty, { ...opts, count: 4, onImage: fail }))).message, 'interrupted');
  assert.equal(readdirSync(empty), [], 'an existing empty folder stays empty');
  await writeSyntheticDataset(empty, opts);
  assert.equal(readdirSync(join(empty, 'Ir')), ['00000.png', '00001.png'], 'an existing empty folder is fine');
  assert.instance(await rejection(writeSyntheticDataset(join(tmp, 'none'), { ...opts, count: 0 })), RangeError);
  assert.not.ok(existsSync(join(tmp, 'none')));
});

const cli = (args: string[]) => sh(process.execPath, ['bin/moefusion.mjs', ...args]);

t('`moefusion synth` writes the dataset, then refuses to overwrite it', async () => {
  const out = join(tmp, 'cli');
  const r = await cli(['synth', '--out', out, '--count', '3', '--size', '40x24', '--seed', '5']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote 3 synthetic pair\(s\) of 40×24 \(seed 5\)/);
  const ds = openDataset(out);
  assert.is(ds.pairs.length, 3);
  const scene = syntheticDatasetScene(5, 1, { width: 40, height: 24 });
  const img = await readImage(ds.pairs[1].ir);
  assert.equal([img.width, img.height], [40, 24]);
  assert.ok(scene.ir.every((v, i) => Math.abs(img.data[i] - Math.round(v * 255)) === 0), 'the CLI wrote the library scene');
  assert.equal(ds.boxes!.read('00001', { width: 40, height: 24 }), scene.boxes.map(roundBoxOutwards));
  assert.match(r.stdout, new RegExp(`${scene.boxes.length > 0 ? '\\d+' : '0'} objects: \\d+ People, \\d+ Car`));

  const before = readFileSync(join(out, 'Ir', '00000.png'));
  const again = await cli(['synth', '--out', out, '--count', '2']);
  assert.is(again.code, EXIT_USER, again.stderr);
  assert.equal(ours(again.stderr).length, 1, again.stderr);
  assert.match(ours(again.stderr)[0], /^moefusion: .*cli: the folder is not empty/);
  assert.is(again.stdout, '');
  assert.ok(readFileSync(join(out, 'Ir', '00000.png')).equals(before), 'the existing files are untouched');
  assert.equal(readdirSync(join(out, 'Ir')), ['00000.png', '00001.png', '00002.png']);

  const bad = await cli(['synth', '--out', join(tmp, 'bad'), '--size', '12xabc']);
  assert.is(bad.code, EXIT_USAGE, 'a malformed value is a usage error');
  assert.match(ours(bad.stderr)[0] ?? bad.stderr, /^moefusion: --size 12xabc: expected WIDTHxHEIGHT/);
  assert.not.ok(existsSync(join(tmp, 'bad')));
});

t.after(() => rmSync(tmp, { recursive: true, force: true }));

t.run();
