/**
 * The auxiliary detectors: training targets, the CenterNet losses against float64 references and finite differences,
 * and the network's shapes, attention and weights round trip.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Rng } from '../src/util/rng.ts';
import { assertClose } from './helpers/compare.ts';
import { gradcheck } from './helpers/gradcheck.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { noGrad, tidy } from '../src/tensor/engine.ts';
import { buildTargets, levelFor, levelSizes } from '../src/model/detector/targets.ts';
import { detectionLosses } from '../src/model/detector/losses.ts';
import { Detector, fusionAttention } from '../src/model/detector/network.ts';
import { DEFAULT_DETECTOR_CONFIG, LEVEL_STRIDES, type DetectorConfig } from '../src/model/detector/config.ts';
import { detectorFromFile, detectorToHost } from '../src/model/detector/weights.ts';
import type { HeadLevel } from '../src/model/detector/decode.ts';

const t = suite('detector');
const rng = new Rng(91);
const CLASSES = ['People', 'Car'];
const SMALL: DetectorConfig = { classes: CLASSES, backbone: [4, 8, 8, 8], fpn: 8, head: 8 };

t('targets: level by scale, centre cell, log size, offset, Gaussian negatives', () => {
  const person = { label: 'People', x0: 10, y0: 20, x1: 22, y1: 44 }; // 12×24: P2
  const car = { label: 'Car', x0: 1, y0: 3, x1: 71, y1: 38 }; // 70 wide: P3
  assert.is(levelFor(person), 0);
  assert.is(levelFor(car), 1);
  assert.is(levelFor({ label: 'Car', x0: 0, y0: 0, x1: 200, y1: 50 }), 2);
  const T = buildTargets([[], [person, car]], 64, 80, CLASSES);
  assert.is(T.positives, 2);
  assert.equal(levelSizes(64, 80), [[16, 20], [8, 10], [4, 5]]);
  const p2 = T.levels[0];
  const [h, w] = [p2.h, p2.w];
  const cell = 8 * w + 4; // centre (16, 32) / 4
  const at = (b: number, c: number) => (b * 2 + c) * h * w + cell;
  assert.is(p2.positive[at(1, 0)], 1);
  assert.is(p2.positive.reduce((a, v) => a + v, 0), 1);
  assert.is(p2.negativeWeight[at(1, 0)], 0);
  assert.ok(p2.negativeWeight[at(1, 0) + 1] > 0 && p2.negativeWeight[at(1, 0) + 1] < 1, 'the neighbour is a penalty-reduced negative');
  assert.is(p2.negativeWeight[at(1, 1)], 1, 'other classes are plain negatives');
  assert.is(p2.centre[h * w + cell], 1);
  assertClose([p2.size[2 * h * w + cell], p2.size[3 * h * w + cell]], [Math.log(12 / 4), Math.log(24 / 4)], { rtol: 1e-6 });
  assertClose([p2.offset[2 * h * w + cell], p2.offset[3 * h * w + cell]], [0, 0], { atol: 1e-7 });
  const p3 = T.levels[1];
  const c3 = Math.floor(20.5 / 8) * p3.w + Math.floor(36 / 8); // centre (36, 20.5) / 8
  assert.is(p3.centre[p3.h * p3.w + c3], 1);
  assertClose([p3.offset[2 * p3.h * p3.w + c3], p3.offset[3 * p3.h * p3.w + c3]], [36 / 8 - 4, 20.5 / 8 - 2], { rtol: 1e-6 });
  assert.throws(() => buildTargets([[{ ...person, label: 'Dog' }]], 64, 80, CLASSES), /Dog/);
});

/** CenterNet's loss in float64, straight from its definition. */
function refLosses(z: Float32Array, size: Float32Array, off: Float32Array, T: ReturnType<typeof buildTargets>): number[] {
  const t0 = T.levels[0];
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  let heat = 0;
  for (let i = 0; i < z.length; i++) {
    const p = sig(z[i]);
    heat += t0.positive[i] ? -((1 - p) ** 2) * Math.log(p) : -t0.negativeWeight[i] * p * p * Math.log(1 - p);
  }
  let s = 0;
  let o = 0;
  const hw = t0.h * t0.w;
  for (let b = 0; b < z.length / (CLASSES.length * hw); b++)
    for (let c = 0; c < 2; c++)
      for (let k = 0; k < hw; k++) {
        const m = t0.centre[b * hw + k];
        s += m * Math.abs(size[(b * 2 + c) * hw + k] - t0.size[(b * 2 + c) * hw + k]);
        o += m * Math.abs(off[(b * 2 + c) * hw + k] - t0.offset[(b * 2 + c) * hw + k]);
      }
  const n = Math.max(1, T.positives);
  return [heat / n, s / n, o / n];
}

t('losses match float64 and pass finite differences', async () => {
  await gpu();
  // One level only (a 32×36 image: P2 is 8×9; boxes small enough for P2).
  const boxes = [[{ label: 'People', x0: 3, y0: 5, x1: 9, y1: 17 }], [{ label: 'Car', x0: 12, y0: 14, x1: 30, y1: 24 }, { label: 'People', x0: 1, y0: 1, x1: 5, y1: 9 }]];
  const T = buildTargets(boxes, 32, 36, CLASSES);
  T.levels = T.levels.slice(0, 1);
  const [h, w] = [T.levels[0].h, T.levels[0].w];
  const heatShape = [2, 2, h, w];
  const regShape = [2, 2, h, w];
  const z = rng.uniform(2 * 2 * h * w, -4, 3);
  const size = rng.uniform(2 * 2 * h * w, -1, 2);
  const off = rng.uniform(2 * 2 * h * w, 0, 1);
  const head = (xs: Tensor[]): HeadLevel => ({ heat: xs[0], size: xs[1], offset: xs[2], stride: 4 });
  const got = noGrad(() => tidy(() => {
    const l = detectionLosses([head([Tensor.fromArray(z, heatShape), Tensor.fromArray(size, regShape), Tensor.fromArray(off, regShape)])], T);
    return [l.heat, l.size, l.offset, l.total];
  }));
  const values = await Promise.all(got.map((x) => x.item()));
  got.forEach((x) => x.dispose());
  const expected = refLosses(z, size, off, T);
  assertClose(values.slice(0, 3), expected, { rtol: 1e-4 });
  assertClose([values[3]], [expected[0] + expected[1] + expected[2]], { rtol: 1e-4 });
  const r = await gradcheck((xs) => detectionLosses([head(xs)], T).total, [z, size, off], [heatShape, regShape, regShape], { h: 1e-2 });
  assert.ok(r.ok, r.message);
});

t('network: level shapes at an odd size, attention in (0,1), Att detached at image size', async () => {
  await gpu();
  const det = Detector.init(SMALL, 3);
  const [H, W] = [37, 45];
  const img = () => Tensor.fromArray(rng.uniform(2 * H * W, 0, 1), [2, 1, H, W]);
  const out = tidy(() => {
    const o = det.forward(img(), img(), { training: true });
    return { o, att: fusionAttention(o, H, W) };
  });
  const sizes = levelSizes(H, W);
  for (const m of ['vis', 'ir'] as const)
    out.o.heads[m].forEach((hl, l) => {
      assert.equal(hl.heat.shape, [2, CLASSES.length, ...sizes[l]]);
      assert.equal(hl.size.shape, [2, 2, ...sizes[l]]);
      assert.equal(hl.offset.shape, [2, 2, ...sizes[l]]);
      assert.is(hl.stride, LEVEL_STRIDES[l]);
    });
  assert.equal(out.att.shape, [2, 1, H, W]);
  assert.is(out.att.requiresGrad, false, 'Att is detached');
  const a = await out.att.data();
  assert.ok(a.every((v) => v > 0 && v < 1));
  const [v2, i2] = await Promise.all([out.o.attention.vis[0].data(), out.o.attention.ir[0].data()]);
  // Corners of align_corners upsampling are the stride-4 maps' corners: max of the two modalities.
  assertClose([a[0]], [Math.max(v2[0], i2[0])], { rtol: 1e-5 });
  det.dispose();
  assert.throws(() => det.forward(Tensor.fromArray(new Float32Array(15 * 40), [1, 1, 15, 40]), Tensor.fromArray(new Float32Array(15 * 40), [1, 1, 15, 40])), /16×16/);
});

t('weights: parameters and running statistics round-trip through a file; a wrong shape is named', async () => {
  await gpu();
  const det = Detector.init(SMALL, 5);
  // One training pass moves the running statistics away from their initial values.
  const img = Tensor.fromArray(rng.uniform(32 * 32, 0, 1), [1, 1, 32, 32]);
  noGrad(() => tidy(() => det.forward(img, img, { training: true })));
  const host = await detectorToHost(det);
  const file = { tensors: new Map(Object.entries(host.tensors).map(([k, v]) => [k, { dtype: 'F32' as const, ...v }])), metadata: host.metadata };
  const back = detectorFromFile(file, 'mem.safetensors');
  assert.equal(back.config, SMALL);
  const [ours, theirs] = [det.params.entries, back.params.entries];
  assert.equal(theirs.map((e) => e.spec.name), ours.map((e) => e.spec.name));
  for (const [i, { spec, value }] of ours.entries()) assert.equal([...(await theirs[i].value.data())], [...(await value.data())], spec.name);
  const mean = await det.params.tree.detector.vis.attention.bn1.running_mean.data();
  assert.ok(mean.some((v) => v !== 0), 'running mean updated by the training pass');
  file.tensors.get('detector.ir.head.out.weight')!.shape = [1, 2, 3, 4];
  assert.throws(() => detectorFromFile(file, 'mem.safetensors'), /detector\.ir\.head\.out\.weight/);
  assert.throws(() => detectorFromFile({ tensors: new Map(), metadata: {} }, 'plain.safetensors'), /no detector/);
  det.dispose();
  back.dispose();
  img.dispose();
  void DEFAULT_DETECTOR_CONFIG;
});

t.run();
