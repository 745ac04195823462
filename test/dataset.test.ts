/** Datasets: pairing by stem, the M3FD/LLVIP/MSRS layouts, label folders, errors, and the seeded split. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { DatasetError, matchPairsInFolders, openDataset, splitPairs } from '../src/io/dataset.ts';
import { assertThrowsError } from './helpers/throws.ts';

const t = suite('dataset');
const DATA = '/work/shared/data';
const tmp = mkdtempSync(join(tmpdir(), 'moefusion-dataset-'));
let dirCount = 0;

/** A fresh folder holding the given files (paths relative to it; contents do not matter for pairing). */
function tree(files: string[]): string {
  const root = join(tmp, `d${dirCount++}`);
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), f.endsWith('.xml') ? '<annotation></annotation>' : '');
  }
  mkdirSync(root, { recursive: true });
  return root;
}

const throwsDataset = (fn: () => unknown, pattern: RegExp) => assertThrowsError(fn, pattern, DatasetError);

t('the shared datasets: MSRS, RoadScene, TNO, M3FD (ir/ + vi/)', () => {
  const msrs = openDataset(`${DATA}/msrs`);
  assert.equal(msrs.pairs.map((p) => p.name), ['00537D', '00556D', '00633D', '00881N', '01023N']);
  assert.is(msrs.pairs[0].ir, `${DATA}/msrs/ir/00537D.png`);
  assert.is(msrs.pairs[0].vi, `${DATA}/msrs/vi/00537D.png`);
  assert.is(msrs.boxes, null);
  assert.is(openDataset(`${DATA}/roadscene`).pairs.length, 221);
  assert.is(openDataset(`${DATA}/tno`).pairs.length, 42);
  assert.is(openDataset(`${DATA}/m3fd`).pairs.length, 1);
  for (const p of openDataset(`${DATA}/roadscene`).pairs) assert.is(basename(p.ir), basename(p.vi));
});

t('the shared LLVIP samples: a split is required, and matched case-insensitively', () => {
  throwsDataset(() => openDataset(`${DATA}/llvip`), /has the splits test, train: choose one \(e\.g\. --split test\)/);
  const test = openDataset(`${DATA}/llvip`, { split: 'test' });
  assert.is(test.split, 'test');
  assert.is(test.pairs.length, 12);
  assert.is(openDataset(`${DATA}/llvip`, { split: 'TRAIN' }).pairs.length, 32);
  throwsDataset(() => openDataset(`${DATA}/llvip`, { split: 'val' }), /no split "val"; it has test, train/);
});

t('M3FD layout: Ir/ + Vis/ with an Annotation/ folder of VOC files', () => {
  const root = tree(['Ir/00001.png', 'Ir/00002.png', 'Vis/00001.png', 'Vis/00002.png', 'Annotation/00001.xml']);
  const d = openDataset(root);
  assert.equal(d.pairs.map((p) => p.name), ['00001', '00002']);
  assert.is(d.irDir, join(root, 'Ir'));
  assert.is(d.viDir, join(root, 'Vis'));
  assert.ok(d.boxes);
  assert.is(d.boxes!.format, 'voc');
  assert.is(d.boxes!.dir, join(root, 'Annotation'));
});

t('LLVIP layout: infrared/{train,test} + visible/{train,test}, Annotations/ at the root', () => {
  const root = tree(['infrared/train/010001.jpg', 'infrared/test/190001.jpg', 'visible/train/010001.jpg', 'visible/test/190001.jpg', 'Annotations/010001.xml']);
  const d = openDataset(root, { split: 'train' });
  assert.equal(d.pairs, [{ name: '010001', ir: join(root, 'infrared/train/010001.jpg'), vi: join(root, 'visible/train/010001.jpg') }]);
  assert.is(d.boxes!.dir, join(root, 'Annotations'));
  throwsDataset(() => openDataset(root), /splits test, train/);
});

t('MSRS layout: train/ and test/ above ir/ + vi/, labels per split; a single split is chosen by itself', () => {
  const root = tree(['train/ir/a.png', 'train/vi/a.png', 'test/ir/b.png', 'test/vi/b.png', 'labels/test/b.txt', 'README.txt']);
  const d = openDataset(root, { split: 'test' });
  assert.equal(d.pairs.map((p) => p.name), ['b']);
  assert.is(d.boxes!.dir, join(root, 'labels', 'test'));
  assert.is(d.boxes!.format, 'yolo');
  const single = tree(['Test/IR/x.png', 'Test/VI/x.png']);
  const s = openDataset(single);
  assert.is(s.split, 'Test');
  assert.equal(s.pairs.map((p) => p.name), ['x']);
});

t('pairs match by stem across extensions, sort numerically, and ignore non-images', () => {
  const root = tree(['ir/10.png', 'ir/2.png', 'ir/notes.txt', 'ir/.hidden.png', 'vi/10.JPG', 'vi/2.jpeg', 'vi/Thumbs.db']);
  const pairs = matchPairsInFolders(join(root, 'ir'), join(root, 'vi'));
  assert.equal(pairs.map((p) => [p.name, basename(p.ir), basename(p.vi)]), [['2', '2.png', '2.jpeg'], ['10', '10.png', '10.JPG']]);
});

t('clear errors: missing folder, empty folder, unmatched names (a few listed), duplicate stems, no layout', () => {
  throwsDataset(() => openDataset(join(tmp, 'nowhere')), /nowhere: no such folder/);
  const empty = tree(['ir/.keep', 'vi/a.png']);
  throwsDataset(() => openDataset(empty), /ir: no images \(\.png, .*\): it is empty/);
  const other = tree(['ir/a.txt', 'vi/a.png']);
  throwsDataset(() => openDataset(other), /ir: no images .*only other files \(a\.txt\)/);
  const ir = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((n) => `ir/${n}.png`);
  const unmatched = tree([...ir, 'vi/a.png', 'vi/z.png']);
  throwsDataset(
    () => openDataset(unmatched),
    /7 infrared image\(s\) have no visible image of the same name in .*vi: b\.png, c\.png, d\.png, e\.png, f\.png and 2 more; 1 visible image\(s\) have no infrared image .*: z\.png/,
  );
  const twice = tree(['ir/a.png', 'ir/a.jpg', 'vi/a.png']);
  throwsDataset(() => openDataset(twice), /a\.jpg and a\.png have the same name|a\.png and a\.jpg have the same name/);
  const none = tree(['images/a.png', 'other/a.png']);
  throwsDataset(() => openDataset(none), /no infrared\/visible folders; expected ir\/ \+ vi\//);
  throwsDataset(() => openDataset(`${DATA}/msrs`, { split: 'train' }), /no split "train"; the images are directly in ir\/ and vi\//);
  throwsDataset(() => openDataset(join(DATA, 'README.md')), /not a folder/);
});

const names = (n: number, prefix = 'img') => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}` }));

t('splitPairs: deterministic per seed, close to the fraction, disjoint and complete', () => {
  const pairs = names(2000);
  const a = splitPairs(pairs, { valFraction: 0.1, seed: 1 });
  const b = splitPairs(pairs, { valFraction: 0.1, seed: 1 });
  const c = splitPairs(pairs, { valFraction: 0.1, seed: 2 });
  assert.equal(a, b);
  assert.not.equal(a.val.map((p) => p.name), c.val.map((p) => p.name));
  assert.ok(Math.abs(a.val.length - 200) < 45, `validation size ${a.val.length}`);
  assert.is(a.train.length + a.val.length, 2000);
  const inVal = new Set(a.val);
  assert.ok(a.train.every((p) => !inVal.has(p)));
  assert.equal(a.train, pairs.filter((p) => !inVal.has(p)), 'the input order is kept');
});

t('splitPairs: adding files does not move the others; small sets keep both sides non-empty', () => {
  const before = splitPairs(names(300), { valFraction: 0.2, seed: 'x' });
  const after = splitPairs([...names(300), ...names(100, 'new')], { valFraction: 0.2, seed: 'x' });
  const valAfter = new Set(after.val.map((p) => p.name));
  assert.ok(before.val.every((p) => valAfter.has(p.name)), 'validation pairs stay in validation');
  assert.ok(before.train.every((p) => !valAfter.has(p.name)), 'training pairs stay in training');
  for (const f of [0.01, 0.5, 0.99]) {
    const s = splitPairs(names(2), { valFraction: f, seed: 3 });
    assert.is(s.train.length, 1, `fraction ${f}`);
    assert.is(s.val.length, 1, `fraction ${f}`);
  }
  assert.is(splitPairs(names(5), { valFraction: 0, seed: 1 }).val.length, 0);
  assert.is(splitPairs(names(5), { valFraction: 1, seed: 1 }).train.length, 0);
  throwsDataset(() => splitPairs(names(5), { valFraction: 1.5, seed: 1 }), /validation fraction must be in \[0, 1\]/);
});

t.after(() => rmSync(tmp, { recursive: true, force: true }));
t.run();
