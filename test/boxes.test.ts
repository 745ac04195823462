/** Boxes: VOC XML, YOLO txt, COCO JSON, scaling, the pixel-centre mask, and label folders. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/util/rng.ts';
import { BoxFormatError, boxMask, openBoxSource, parseCoco, parseVoc, parseYolo, scaleBoxes, type Box } from '../src/io/boxes.ts';
import { assertThrowsError } from './helpers/throws.ts';

const t = suite('boxes');
const rng = new Rng(7);
const tmp = mkdtempSync(join(tmpdir(), 'moefusion-boxes-'));

const voc = (objects: string, size = '<size><width>640</width><height>480</height><depth>3</depth></size>') =>
  `<?xml version="1.0"?>\n<annotation><folder>x</folder><filename>a.jpg</filename>${size}${objects}</annotation>`;
const vocObject = (name: string, xmin: number, ymin: number, xmax: number, ymax: number) =>
  `<object><name>${name}</name><pose>Unspecified</pose><difficult>0</difficult><bndbox><xmin>${xmin}</xmin><ymin>${ymin}</ymin><xmax>${xmax}</xmax><ymax>${ymax}</ymax></bndbox></object>`;

const throwsBoxError = (fn: () => unknown, pattern: RegExp) => assertThrowsError(fn, pattern, BoxFormatError);

t('VOC: objects, 1-based inclusive corners to continuous pixels, size', () => {
  const a = parseVoc(voc(vocObject('person', 11, 21, 30, 60) + vocObject('car', 1, 1, 640, 480)));
  assert.equal(a.size, { width: 640, height: 480 });
  assert.equal(a.boxes, [
    { label: 'person', x0: 10, y0: 20, x1: 30, y1: 60 },
    { label: 'car', x0: 0, y0: 0, x1: 640, y1: 480 },
  ]);
  // A single object is still a list; names that look like numbers stay strings; no objects is fine.
  assert.equal(parseVoc(voc(vocObject('7', 5.5, 6, 10, 12))).boxes, [{ label: '7', x0: 4.5, y0: 5, x1: 10, y1: 12 }]);
  assert.equal(parseVoc(voc('', '')).boxes, []);
  assert.is(parseVoc(voc('', '')).size, undefined);
});

t('VOC: malformed files are named and explained', () => {
  throwsBoxError(() => parseVoc('<annotation><object></annotation>', 'bad.xml'), /bad\.xml: malformed XML at line 1/);
  throwsBoxError(() => parseVoc('<root/>', 'r.xml'), /r\.xml: no <annotation>/);
  throwsBoxError(() => parseVoc(voc('<object><name>a</name></object>'), 'n.xml'), /n\.xml: <object> 1 has no <bndbox>/);
  throwsBoxError(() => parseVoc(voc(vocObject('a', 1, 2, 3, 4).replace('<xmax>3', '<xmax>three')), 'x.xml'), /<object> 1 <bndbox><xmax> is not a number/);
});

t('YOLO: normalised centre/size to pixels, class names, blank lines, errors', () => {
  const size = { width: 200, height: 100 };
  const boxes = parseYolo('0 0.5 0.5 0.2 0.4\n\n2 0.1 0.9 0.2 0.2  \r\n', size, ['person', 'bike']);
  assert.equal(boxes.length, 2);
  const near = (b: Box, e: Box) => {
    assert.is(b.label, e.label);
    for (const k of ['x0', 'y0', 'x1', 'y1'] as const) assert.ok(Math.abs(b[k] - e[k]) < 1e-9, `${k}: ${b[k]} vs ${e[k]}`);
  };
  near(boxes[0], { label: 'person', x0: 80, y0: 30, x1: 120, y1: 70 });
  near(boxes[1], { label: '2', x0: 0, y0: 80, x1: 40, y1: 100 });
  assert.equal(parseYolo('', size), []);
  throwsBoxError(() => parseYolo('0 0.5 0.5 0.2', size, [], 'a.txt'), /a\.txt: line 1: expected "class cx cy w h"/);
  throwsBoxError(() => parseYolo('\n0 0.5 x 0.2 0.1', size, [], 'b.txt'), /b\.txt: line 2 field 3 is not a number/);
});

t('COCO: images by file stem, bbox [x, y, w, h], category names, errors', () => {
  const doc = {
    images: [{ id: 1, file_name: 'sub/190001.jpg', width: 1280, height: 1024 }, { id: 2, file_name: 'empty.png', width: 10, height: 10 }],
    annotations: [
      { id: 1, image_id: 1, category_id: 3, bbox: [10, 20, 30.5, 40] },
      { id: 2, image_id: 1, category_id: 9, bbox: [0, 0, 1, 1] },
    ],
    categories: [{ id: 3, name: 'person' }],
  };
  const m = parseCoco(JSON.stringify(doc));
  assert.equal(m.get('190001'), {
    size: { width: 1280, height: 1024 },
    boxes: [{ label: 'person', x0: 10, y0: 20, x1: 40.5, y1: 60 }, { label: '9', x0: 0, y0: 0, x1: 1, y1: 1 }],
  });
  assert.equal(m.get('empty')!.boxes, []);
  throwsBoxError(() => parseCoco('{', 'c.json'), /c\.json: malformed JSON/);
  throwsBoxError(() => parseCoco('{"images": []}', 'c.json'), /not COCO/);
  const orphan = { ...doc, annotations: [{ id: 5, image_id: 42, category_id: 3, bbox: [0, 0, 1, 1] }] };
  throwsBoxError(() => parseCoco(JSON.stringify(orphan), 'c.json'), /annotation 5 refers to image 42/);
});

t('scaleBoxes scales x and y independently', () => {
  const b = scaleBoxes([{ label: 'a', x0: 10, y0: 20, x1: 30, y1: 40 }], 100, 200, 50, 100 * 3);
  assert.equal(b, [{ label: 'a', x0: 5, y0: 30, x1: 15, y1: 60 }]);
});

/** The rule, pixel by pixel: centre (j + 0.5, i + 0.5) inside [x0, x1) × [y0, y1) of any box. */
function maskReference(boxes: Box[], w: number, h: number): Float32Array {
  const m = new Float32Array(w * h);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      if (boxes.some((b) => b.x0 <= j + 0.5 && j + 0.5 < b.x1 && b.y0 <= i + 0.5 && i + 0.5 < b.y1)) m[i * w + j] = 1;
  return m;
}

t('boxMask: integer corners cover exactly x0..x1-1 × y0..y1-1', () => {
  const m = boxMask([{ label: 'a', x0: 1, y0: 2, x1: 3, y1: 4 }], 5, 5);
  // prettier-ignore
  assert.equal([...m], [
    0, 0, 0, 0, 0,
    0, 0, 0, 0, 0,
    0, 1, 1, 0, 0,
    0, 1, 1, 0, 0,
    0, 0, 0, 0, 0,
  ]);
  assert.equal([...boxMask([], 3, 1)], [0, 0, 0]);
});

t('boxMask matches the pixel-centre rule on random boxes (fractional, overlapping, outside, empty)', () => {
  for (const [w, h] of [[1, 1], [7, 5], [13, 17], [64, 3]]) {
    for (let trial = 0; trial < 20; trial++) {
      const boxes: Box[] = [];
      for (let k = 0; k < 1 + rng.int(4); k++) {
        const [xa, xb] = [(rng.next() * 1.6 - 0.3) * w, (rng.next() * 1.6 - 0.3) * w];
        const [ya, yb] = [(rng.next() * 1.6 - 0.3) * h, (rng.next() * 1.6 - 0.3) * h];
        // Some boxes are inverted (empty) on purpose.
        boxes.push({ label: 'x', x0: xa, x1: xb, y0: Math.min(ya, yb), y1: Math.max(ya, yb) });
      }
      assert.equal([...boxMask(boxes, w, h)], [...maskReference(boxes, w, h)], `${w}×${h} ${JSON.stringify(boxes)}`);
    }
  }
});

t('openBoxSource: VOC folder (scaled to the image size), YOLO with classes.txt, COCO file', () => {
  const vocDir = join(tmp, 'Annotations');
  mkdirSync(vocDir);
  writeFileSync(join(vocDir, '0001.xml'), voc(vocObject('person', 11, 21, 30, 60)));
  const vocSource = openBoxSource(vocDir);
  assert.is(vocSource.format, 'voc');
  assert.equal(vocSource.read('0001', { width: 640, height: 480 }), [{ label: 'person', x0: 10, y0: 20, x1: 30, y1: 60 }]);
  assert.equal(vocSource.read('0001', { width: 320, height: 240 }), [{ label: 'person', x0: 5, y0: 10, x1: 15, y1: 30 }]);
  assert.equal(vocSource.read('missing', { width: 640, height: 480 }), []);

  const yoloDir = join(tmp, 'labels');
  mkdirSync(yoloDir);
  writeFileSync(join(yoloDir, 'classes.txt'), 'person\ncar\n');
  writeFileSync(join(yoloDir, 'a.txt'), '1 0.5 0.5 0.5 0.5\n');
  const yolo = openBoxSource(yoloDir);
  assert.is(yolo.format, 'yolo');
  assert.equal(yolo.read('a', { width: 8, height: 4 }), [{ label: 'car', x0: 2, y0: 1, x1: 6, y1: 3 }]);
  assert.equal(yolo.read('classes', { width: 8, height: 4 }), [], 'the class list is not an image');

  const cocoDir = join(tmp, 'coco');
  mkdirSync(cocoDir);
  writeFileSync(join(cocoDir, 'instances.json'), JSON.stringify({
    images: [{ id: 1, file_name: 'a.png', width: 100, height: 50 }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20] }],
    categories: [{ id: 1, name: 'person' }],
  }));
  const coco = openBoxSource(cocoDir);
  assert.is(coco.format, 'coco');
  assert.equal(coco.read('a', { width: 200, height: 100 }), [{ label: 'person', x0: 20, y0: 20, x1: 60, y1: 60 }]);
  writeFileSync(join(cocoDir, 'other.json'), '{}');
  throwsBoxError(() => openBoxSource(cocoDir), /several COCO files \(instances\.json, other\.json\)|several COCO files \(other\.json, instances\.json\)/);
});

t.after(() => rmSync(tmp, { recursive: true, force: true }));
t.run();
