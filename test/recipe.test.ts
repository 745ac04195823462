/**
 * The training recipe for data without boxes: the infrared saliency map (against its definition), the learning-rate
 * schedules (warm-up, cosine, steps), left-right flips of crops, a resumed run with every new option continuing
 * exactly, and weights that record their attention mode so that fusing with `auto` uses it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { assertResumesExactly } from './helpers/resume.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { infraredSaliency } from '../src/model/saliency.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { saveWeights } from '../src/model/weights-file.ts';
import { Fuser } from '../src/model/fuser.ts';
import { ATTENTION_METADATA_KEY, resolveAttention } from '../src/model/attention.ts';
import { Trainer } from '../src/train/trainer.ts';
import { referenceOptions, type TrainOptions } from '../src/train/options.ts';
import { Batcher, type SampleSource, type TrainingSample } from '../src/train/data.ts';
import { Rng as RunRng } from '../src/util/rng.ts';

const small = SMALL_GATES;
const rng = new Rng(17);
const t = suite('recipe');

t('saliency: Σ_q max(I(p) − I(q), 0) normalised, squared; 0 on flat images, 1 at the brightest pixel', () => {
  const n = 300;
  const gray = Float32Array.from(rng.uniform(n, 0, 1));
  const s = infraredSaliency(gray, 2);
  const q = (v: number) => Math.round(v * 255) / 255;
  const raw = [...gray].map((p) => [...gray].reduce((acc, v) => acc + Math.max(q(p) - q(v), 0), 0));
  const top = Math.max(...raw);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(s[i] - (raw[i] / top) ** 2) < 1e-6, `pixel ${i}: ${s[i]} vs ${(raw[i] / top) ** 2}`);
  assert.is(Math.max(...s), 1);
  assert.equal([...infraredSaliency(new Float32Array(50).fill(0.4))], new Array(50).fill(0), 'flat image');
  const order = [...gray.keys()].sort((a, b) => gray[a] - gray[b]);
  for (let k = 1; k < n; k++) assert.ok(s[order[k]] >= s[order[k - 1]], 'rises with brightness');
});

t('learning rate: linear warm-up, then cosine to 0 or the reference steps', async () => {
  await gpu();
  const source: SampleSource = { count: 1, get: async () => ({ width: 8, height: 8, ir: new Float32Array(64), vis: new Float32Array(64) }) };
  const lrs = (o: Partial<TrainOptions>) => {
    const tr = new Trainer(FusionNet.init(small, 1), source, { ...referenceOptions(100), crop: [8, 8], lr: 1, ...o });
    const out = [0, 4, 9, 10, 55, 99].map((s) => tr.lrAt(s));
    tr.optimizer.dispose();
    tr.net.dispose();
    return out;
  };
  const cosine = lrs({ schedule: 'cosine', warmup: 10 });
  assert.equal(cosine.slice(0, 4), [0.1, 0.5, 1, 1]);
  assert.ok(Math.abs(cosine[4] - 0.5) < 1e-12, `half way: ${cosine[4]}`);
  assert.ok(cosine[5] > 0 && cosine[5] < 1e-3, `near the end: ${cosine[5]}`);
  assert.equal(lrs({ milestones: [50, 90], gamma: 0.1 }), [1, 1, 1, 1, 0.1, 0.1 ** 2].map((v, i) => (i < 4 ? 1 : v)));
});

t('flips: each crop is the plain crop or its mirror, both occur, boxes follow; without flips the random sequence is unchanged', async () => {
  const w = 6;
  const h = 3;
  const sample: TrainingSample = {
    width: w,
    height: h,
    ir: Float32Array.from({ length: w * h }, (_, i) => i),
    vis: Float32Array.from({ length: w * h }, (_, i) => 100 + i),
    boxes: [{ label: 'x', x0: 1, y0: 0, x1: 3, y1: 2 }],
  };
  const source: SampleSource = { count: 1, get: async () => sample };
  const batcher = new Batcher(source, { batchSize: 1, crop: [h, w], flip: true }, new RunRng(5));
  const seen = new Set<string>();
  for (let k = 0; k < 20; k++) {
    const b = await batcher.next();
    const mirrored = b.ir[0] === w - 1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const src = y * w + (mirrored ? w - 1 - x : x);
        assert.is(b.ir[y * w + x], src);
        assert.is(b.vis[y * w + x], 100 + src);
      }
    assert.equal([b.boxes[0][0].x0, b.boxes[0][0].x1], mirrored ? [3, 5] : [1, 3]);
    seen.add(mirrored ? 'mirror' : 'plain');
  }
  assert.equal([...seen].sort(), ['mirror', 'plain']);
  // Without flips the generator is drawn as before the option existed: two crops, then the same next value.
  const a = new RunRng(9);
  await new Batcher(source, { batchSize: 2, crop: [h, w] }, a).next();
  const b = new RunRng(9);
  for (let k = 0; k < 4; k++) b.int(1); // the pass order of one sample draws nothing; each crop draws y0 and x0
  assert.is(a.next(), b.next());
});

t('saliency attention with the max of the sources everywhere, cosine, warm-up and flips: a resumed run continues exactly', async () => {
  await gpu();
  const r = new Rng(3);
  const samples: TrainingSample[] = [0, 1, 2].map(() => {
    const ir = Float32Array.from(r.uniform(40 * 30, 0, 1));
    return { width: 40, height: 30, ir, vis: Float32Array.from(r.uniform(40 * 30, 0, 1)), saliency: infraredSaliency(ir) };
  });
  const data: SampleSource = { count: 3, get: async (i) => samples[i] };
  const opts: TrainOptions = { ...referenceOptions(6), batchSize: 2, crop: [24, 32], lr: 1e-3, attention: 'saliency', target: 'max', schedule: 'cosine', warmup: 2, flip: true, seed: 4 };
  await assertResumesExactly(small, data, opts);
});

t("weights record their attention mode; 'auto' fuses with it, explicit modes override it", async () => {
  await gpu();
  assert.is(resolveAttention('auto', true, { [ATTENTION_METADATA_KEY]: 'saliency' }), 'detector');
  assert.is(resolveAttention('auto', false, { [ATTENTION_METADATA_KEY]: 'saliency' }), 'saliency');
  assert.is(resolveAttention('auto', false, {}), 'none');
  assert.is(resolveAttention('none', false, { [ATTENTION_METADATA_KEY]: 'saliency' }), 'none');
  const dir = mkdtempSync(join(tmpdir(), 'moefusion-att-'));
  try {
    const net = FusionNet.init(small, 6);
    const file = join(dir, 'w.safetensors');
    await saveWeights(file, net, { metadata: { [ATTENTION_METADATA_KEY]: 'saliency' } });
    net.dispose();
    const fuser = await Fuser.create({ weights: file });
    const ir = { width: 20, height: 16, data: Float32Array.from(rng.uniform(320, 0, 1)) };
    const vis = { width: 20, height: 16, data: Float32Array.from(rng.uniform(320, 0, 1)) };
    const [auto, saliency, map, none] = await Promise.all([
      fuser.fuse(ir, vis),
      fuser.fuse(ir, vis, { attention: 'saliency' }),
      fuser.fuse(ir, vis, { attention: infraredSaliency(ir.data) }),
      fuser.fuse(ir, vis, { attention: 'none' }),
    ]);
    assert.equal([...auto.data], [...saliency.data], "auto is the recorded 'saliency'");
    assert.equal([...saliency.data], [...map.data], 'saliency is the map of model/saliency.ts');
    assert.not.equal([...none.data], [...auto.data], 'none differs');
    fuser.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
