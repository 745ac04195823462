/**
 * What issue 25 added to training and output: the training-free fusions (max, multi-scale), the output ranges,
 * area resampling, crops at a scale, the pixel loss against a target image, the options schema's migration of old
 * checkpoints, and a resumed multi-scale run with scaled crops continuing exactly.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { assertResumesExactly } from './helpers/resume.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { maxFusion, multiscaleFusion } from '../src/model/classic-fusion.ts';
import { applyRange } from '../src/io/output-range.ts';
import { resampleRegion } from '../src/io/resample.ts';
import { Batcher, type SampleSource, type TrainingSample } from '../src/train/data.ts';
import { parseOption, referenceOptions, storedOptions, type TrainOptions } from '../src/train/options.ts';
import { targetImage } from '../src/train/targets.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { noGrad, tidy } from '../src/tensor/engine.ts';
import { l1Loss } from '../src/ops/index.ts';
import { fusionLosses } from '../src/model/losses.ts';

const t = suite('targets');
const rng = new Rng(25);
const random = (n: number) => Float32Array.from(rng.uniform(n, 0, 1));

/** 'same' Gaussian blur with replicated borders, written out directly (float64, 2-D window). */
function blurRef(p: Float32Array, w: number, h: number, sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const taps = Array.from({ length: 2 * r + 1 }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * sigma * sigma)));
  const sum = taps.reduce((a, b) => a + b, 0);
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++) {
          const sy = Math.min(h - 1, Math.max(0, y + dy));
          const sx = Math.min(w - 1, Math.max(0, x + dx));
          acc += (taps[dy + r] / sum) * (taps[dx + r] / sum) * p[sy * w + sx];
        }
      out[y * w + x] = acc;
    }
  return out;
}

t('multi-scale fusion: per scale the detail of larger magnitude, the brighter base, against a direct float64 reference', () => {
  const [w, h] = [23, 17];
  const [ir, vis] = [random(w * h), random(w * h)];
  const sigmas = [1, 2];
  const got = multiscaleFusion(ir, vis, w, h, { sigmas });
  const gi = [Float64Array.from(ir), ...sigmas.map((s) => blurRef(ir, w, h, s))];
  const gv = [Float64Array.from(vis), ...sigmas.map((s) => blurRef(vis, w, h, s))];
  for (let i = 0; i < w * h; i++) {
    let want = Math.max(gi[2][i], gv[2][i]);
    for (let k = 0; k < 2; k++) {
      const [di, dv] = [gi[k][i] - gi[k + 1][i], gv[k][i] - gv[k + 1][i]];
      want += Math.abs(di) >= Math.abs(dv) ? di : dv;
    }
    assert.ok(Math.abs(got[i] - want) < 1e-5, `pixel ${i}: ${got[i]} vs ${want}`);
  }
});

t('multi-scale fusion of an image with itself is the image; a flat partner keeps the textured one; gain scales details', () => {
  const [w, h] = [31, 20];
  const img = random(w * h);
  const self = multiscaleFusion(img, img, w, h);
  assert.ok(self.every((v, i) => Math.abs(v - img[i]) < 1e-5), 'the details and base telescope back to the image');
  // A flat, darker partner contributes no detail and a darker base: the result is the textured image.
  const flat = new Float32Array(w * h).fill(-1);
  const kept = multiscaleFusion(flat, img, w, h);
  assert.ok(kept.every((v, i) => Math.abs(v - img[i]) < 1e-5), 'the textured image survives');
  const base = multiscaleFusion(flat, img, w, h, { detailGain: 0 });
  const doubled = multiscaleFusion(flat, img, w, h, { detailGain: 2 });
  assert.ok(doubled.every((v, i) => Math.abs(v - (2 * img[i] - base[i])) < 1e-5), 'gain 2 doubles the details around the base');
  assert.equal([...maxFusion(Float32Array.of(0.2, 0.9), Float32Array.of(0.5, 0.1))], [0.5, 0.9].map(Math.fround));
});

t('targets: reference is M·max + (1 − M)·mean, max and multiscale are the fusions', () => {
  const [w, h] = [12, 9];
  const [ir, vis, m] = [random(w * h), random(w * h), random(w * h)];
  const ref = targetImage('reference', { ir, vis, foreground: m, width: w, height: h });
  for (let i = 0; i < w * h; i++) assert.ok(Math.abs(ref[i] - (m[i] * Math.max(ir[i], vis[i]) + (1 - m[i]) * (ir[i] + vis[i]) / 2)) < 1e-6);
  assert.equal([...targetImage('max', { ir, vis, width: w, height: h })], [...maxFusion(ir, vis)]);
  assert.equal([...targetImage('multiscale', { ir, vis, width: w, height: h })], [...multiscaleFusion(ir, vis, w, h)]);
  assert.equal([...targetImage('multiscale', { ir, vis, width: w, height: h }, { detailGain: 1.25 })], [...multiscaleFusion(ir, vis, w, h, { detailGain: 1.25 })]);
});

t('output range: clamp cuts to [0, 1]; stretch clamps, then maps min..max to 0..1; a flat image stays', () => {
  const v = Float32Array.of(-0.5, 0.2, 0.4, 0.3, 1.7);
  assert.equal([...applyRange(v, 'clamp')], [0, 0.2, 0.4, 0.3, 1].map(Math.fround));
  const lifted = Float32Array.of(0.2, 0.6, 0.4);
  const s = applyRange(lifted, 'stretch');
  assert.equal([s[0], s[1]], [0, 1]);
  assert.ok(Math.abs(s[2] - 0.5) < 1e-6);
  assert.equal([...applyRange(v, 'stretch')], [...applyRange(v, 'clamp')], 'already spanning 0..1 after the clamp');
  assert.equal([...applyRange(Float32Array.of(0.3, 0.3), 'stretch')], [0.3, 0.3].map(Math.fround));
});

t('area resampling: each output is the mean of the area it covers (float64 reference at awkward ratios); same size copies; flip mirrors', () => {
  const [W, H] = [29, 23];
  const src = random(W * H);
  const region = { x0: 3, y0: 2, width: 19, height: 14 };
  for (const [ow, oh] of [[7, 5], [19, 14], [11, 13], [1, 1]]) {
    const got = resampleRegion(src, W, region, ow, oh);
    const flipped = resampleRegion(src, W, region, ow, oh, true);
    // Reference: supersample every source pixel into a fine grid and average the fine cells of each output pixel.
    const fine = 64;
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        let acc = 0;
        for (let j = 0; j < fine; j++)
          for (let i = 0; i < fine; i++) {
            const sx = region.x0 + ((x + (i + 0.5) / fine) * region.width) / ow;
            const sy = region.y0 + ((y + (j + 0.5) / fine) * region.height) / oh;
            acc += src[Math.floor(sy) * W + Math.floor(sx)];
          }
        const want = acc / (fine * fine);
        assert.ok(Math.abs(got[y * ow + x] - want) < 0.02, `${ow}×${oh} (${x},${y}): ${got[y * ow + x]} vs ${want}`);
        assert.is(flipped[y * ow + (ow - 1 - x)], got[y * ow + x]);
      }
  }
  const copy = resampleRegion(src, W, region, 19, 14);
  for (let y = 0; y < 14; y++) for (let x = 0; x < 19; x++) assert.is(copy[y * 19 + x], src[(y + 2) * W + x + 3]);
  // Exact on a constant plane and on whole pixels: 2×2 blocks average exactly.
  const blocks = resampleRegion(Float32Array.of(1, 3, 5, 7, 2, 4, 6, 8), 4, { x0: 0, y0: 0, width: 4, height: 2 }, 2, 1);
  assert.equal([...blocks], [2.5, 6.5]);
});

t('crop scale: regions between 1× and the largest scale the image allows, resized to the crop; boxes follow', async () => {
  const [W, H] = [64, 48];
  const ramp = Float32Array.from({ length: W * H }, (_, i) => i % W); // the column index
  // 4×4 boxes every 8 pixels: a crop keeps those whose centre it holds, shrunk by its scale.
  const grid = Array.from({ length: (W / 8) * (H / 8) }, (_, i) => ({ label: 'x', x0: (i % 8) * 8 + 2, y0: Math.floor(i / 8) * 8 + 2, x1: (i % 8) * 8 + 6, y1: Math.floor(i / 8) * 8 + 6 }));
  const sample: TrainingSample = { width: W, height: H, ir: ramp, vis: ramp, boxes: grid };
  const source: SampleSource = { count: 1, get: async () => sample };
  const batcher = new Batcher(source, { batchSize: 1, crop: [12, 16], cropScale: [1, 8] }, new Rng(3));
  const scales: number[] = [];
  for (let k = 0; k < 40; k++) {
    const b = await batcher.next();
    // The ramp's columns advance by about the region's width / 16 per output column.
    const step = (b.ir[15] - b.ir[0]) / 15;
    assert.ok(step >= 0.95 && step <= W / 16 + 0.05, `scale ${step} within [1, ${W / 16}]`);
    assert.ok(b.boxes[0].length > 0, 'a crop holds some boxes');
    for (const box of b.boxes[0]) {
      assert.ok(box.x0 >= 0 && box.y0 >= 0 && box.x1 <= 16 + 1e-9 && box.y1 <= 12 + 1e-9, 'boxes lie in the crop');
      // A box the crop holds whole shrinks by the region's scale, which the ramp measures too.
      if (box.x0 > 0 && box.x1 < 16) {
        const scale = 4 / (box.x1 - box.x0);
        assert.ok(Math.abs(scale - step) < 0.1 * step, `box scale ${scale}, ramp scale ${step}`);
        scales.push(scale);
      }
    }
  }
  assert.ok(Math.min(...scales) < 1.6 && Math.max(...scales) > 3, `scales spread over the range: ${Math.min(...scales)}..${Math.max(...scales)}`);
  // Without a scale range the generator is drawn as before the option existed.
  const [a, b] = [new Rng(9), new Rng(9)];
  await new Batcher(source, { batchSize: 1, crop: [12, 16], cropScale: [1, 1] }, a).next();
  b.int(1);
  b.int(1);
  assert.is(a.next(), b.next());
});

t('options: old checkpoints map --foreground to --target and take the legacy values; bad values name their flag', () => {
  const old = { ...referenceOptions(10) } as Record<string, unknown>;
  for (const k of ['target', 'cropScale', 'valSize', 'schedule', 'warmup', 'flip']) delete old[k];
  const all = storedOptions({ ...old, foreground: 'all' });
  assert.ok('options' in all && all.options.target === 'max' && !('foreground' in all.options));
  const attention = storedOptions({ ...old, foreground: 'attention' });
  assert.ok('options' in attention && attention.options.target === 'reference' && attention.options.valSize === null);
  assert.equal('options' in attention && attention.options.cropScale, [1, 1]);
  const bad = storedOptions({ ...old, target: 'sharp' });
  assert.ok('problem' in bad && /options\.target is not one of reference, max, multiscale/.test(bad.problem));
  assert.equal(parseOption('cropScale', '1,3'), [1, 3]);
  assert.equal(parseOption('cropScale', '2'), [2, 2]);
  assert.throws(() => parseOption('cropScale', '0.5,2'), /--crop-scale 0\.5,2: expected MIN,MAX/);
  assert.throws(() => parseOption('target', 'sharp'), /--target sharp: expected one of reference, max, multiscale/);
  assert.equal(parseOption('valSize', '320x240'), [240, 320]);
  assert.throws(() => parseOption('detailGain', '0'), /--detail-gain 0: expected a positive number/);
});

t('target multiscale: the pixel loss is the L1 distance to the multi-scale fusion of the crop; a resumed run with scaled crops continues exactly', async () => {
  await gpu();
  const r = new Rng(4);
  const [W, H] = [48, 40];
  const samples: TrainingSample[] = [0, 1, 2].map(() => {
    const [ir, vis] = [Float32Array.from(r.uniform(W * H, 0, 1)), Float32Array.from(r.uniform(W * H, 0, 1))];
    return { width: W, height: H, ir, vis, target: multiscaleFusion(ir, vis, W, H) };
  });
  const data: SampleSource = { count: 3, get: async (i) => samples[i] };
  const opts: TrainOptions = { ...referenceOptions(6), batchSize: 2, crop: [18, 24], cropScale: [1, 1.6], lr: 1e-3, target: 'multiscale', detailGain: 1.25, gradGain: 1.2, pixelWeight: 3, schedule: 'cosine', warmup: 2, flip: true, seed: 5 };
  // The loss of one batch against a CPU computation of the same target crops.
  const probe = new Batcher(data, opts, new Rng(1));
  const batch = await probe.next();
  const shape = [2, 1, 18, 24];
  const net = FusionNet.init(SMALL_GATES, 3);
  const { pixel, direct, out, terms } = noGrad(() =>
    tidy(() => {
      const [irT, visT] = [Tensor.fromArray(batch.ir, shape), Tensor.fromArray(batch.vis, shape)];
      const targetT = Tensor.fromArray(batch.target!, shape);
      const o = net.forward(irT, visT, null);
      const losses = fusionLosses(net.config, o.fused, visT, irT, { image: targetT }, o.auxLoss, opts);
      return { pixel: losses.pixel, direct: l1Loss(o.fused, targetT), out: o.fused, terms: [losses.total, losses.grad, losses.aux] };
    }),
  );
  const [got, want, f] = [await pixel.item(), await direct.item(), await out.data()];
  const [total, grad, aux] = await Promise.all(terms.map((x) => x.item()));
  for (const x of [pixel, direct, out, ...terms]) x.dispose();
  assert.ok(Math.abs(got - want) < 1e-7, `pixel loss ${got} vs L1 to the target ${want}`);
  const weighted = net.config.gradWeight * grad + opts.pixelWeight * got + aux;
  assert.ok(Math.abs(total - weighted) < 1e-5 * weighted, `--pixel-weight 3: total ${total} vs 10·grad + 3·pixel + aux ${weighted}`);
  let l1 = 0;
  for (let i = 0; i < f.length; i++) l1 += Math.abs(f[i] - batch.target![i]);
  assert.ok(Math.abs(l1 / f.length - want) < 1e-5, `the L1 on the CPU agrees: ${l1 / f.length} vs ${want}`);
  net.dispose();

  await assertResumesExactly(SMALL_GATES, data, opts);
});

t.run();
