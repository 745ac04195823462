/**
 * The decode module of the detectors (src/model/detector/decode.ts): its exact logit threshold and its public
 * wrapper. Its kernels: test/kernels/detection-peaks.test.ts and test/kernels/nms.test.ts.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { assertClose } from './helpers/compare.ts';
import { blank, release, setHeat, sigmoid, upload } from './helpers/detection.ts';
import { decodeDetections, logitThreshold } from '../src/model/detector/decode.ts';

const t = suite('detection-decode');

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
