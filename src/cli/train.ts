/**
 * `moefusion train --data DIR --out RUN_DIR [options]`: trains the fusion network on the GPU from scratch, from a
 * weights file (--init) or from the run's own checkpoint (--resume, which continues exactly where a killed run
 * stopped). Writes to RUN_DIR: checkpoint.safetensors (atomic, every --checkpoint-every steps and at the end),
 * weights.safetensors (reference names), log.jsonl (one line per step, plus validation lines) and loss.png.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { initEngine, noGrad, tidy } from '../graph/engine.ts';
import { Tensor } from '../graph/tensor.ts';
import { DEFAULT_CONFIG } from '../model/config.ts';
import { FusionNet } from '../model/fusion-net.ts';
import { initParameters } from '../model/parameters.ts';
import { loadWeights, saveWeights } from '../model/weights.ts';
import { fusionLosses } from '../model/losses.ts';
import { Trainer, referenceOptions, type SampleSource, type TrainingSample, type TrainOptions } from '../model/trainer.ts';
import { openDataset, splitPairs, type ImagePair } from '../io/dataset.ts';
import { boxMask, type BoxSource } from '../io/boxes.ts';
import { readImage } from '../io/image.ts';
import { toGray01 } from '../io/color.ts';
import { lineChart } from '../io/plot.ts';
import { writeImage } from '../io/image.ts';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.ts';
import { UserError } from './errors.ts';
import { createProgress } from './progress.ts';

interface TrainArgs {
  data: string[];
  split?: string;
  out: string;
  steps: string;
  batch: string;
  crop: string;
  lr: string;
  weightDecay: string;
  clip: string;
  milestones?: string;
  gamma: string;
  seed: string;
  attention: 'boxes' | 'none';
  valFraction: string;
  valEvery: string;
  checkpointEvery: string;
  init?: string;
  resume?: boolean;
}

/** Decodes pairs lazily and keeps them (gray floats) for the next passes. */
class PairSource implements SampleSource {
  private cache = new Map<number, TrainingSample>();
  constructor(
    private pairs: Array<ImagePair & { boxes: BoxSource | null }>,
  ) {}
  get count(): number {
    return this.pairs.length;
  }
  async get(i: number): Promise<TrainingSample> {
    const hit = this.cache.get(i);
    if (hit) return hit;
    const p = this.pairs[i];
    const [ir, vi] = [await readImage(p.ir), await readImage(p.vi)];
    if (ir.width !== vi.width || ir.height !== vi.height)
      throw new UserError(`${p.ir} is ${ir.width}×${ir.height} but ${p.vi} is ${vi.width}×${vi.height}: a pair must have one size`);
    const boxes = p.boxes?.read(p.name, { width: ir.width, height: ir.height }) ?? [];
    const s: TrainingSample = {
      width: ir.width,
      height: ir.height,
      ir: toGray01(ir, 'first'),
      vis: toGray01(vi, 'luma'),
      mask: boxes.length ? boxMask(boxes, ir.width, ir.height) : undefined,
    };
    this.cache.set(i, s);
    return s;
  }
}

function positive(name: string, v: string, integer = true): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UserError(`${name} ${v}: expected a positive ${integer ? 'integer' : 'number'}`);
  return n;
}

function parseCrop(v: string): [number, number] | null {
  if (v === 'none') return null;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  if (!m) throw new UserError(`--crop ${v}: expected SIZE, HEIGHTxWIDTH or none`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

function optionsFrom(a: TrainArgs): TrainOptions {
  const steps = positive('--steps', a.steps);
  const ref = referenceOptions(steps);
  return {
    ...ref,
    batchSize: positive('--batch', a.batch),
    crop: parseCrop(a.crop),
    lr: positive('--lr', a.lr, false),
    weightDecay: Number(a.weightDecay),
    clipNorm: positive('--clip', a.clip, false),
    milestones: a.milestones ? a.milestones.split(',').map((s) => positive('--milestones', s)) : ref.milestones,
    gamma: positive('--gamma', a.gamma, false),
    seed: Number(a.seed),
    attention: a.attention,
  };
}

async function validationLoss(net: FusionNet, source: SampleSource, crop: [number, number] | null): Promise<number> {
  let sum = 0;
  for (let i = 0; i < source.count; i++) {
    const s = await source.get(i);
    const [h, w] = crop ? [Math.min(crop[0], s.height), Math.min(crop[1], s.width)] : [s.height, s.width];
    const take = (a: Float32Array) => {
      const out = new Float32Array(h * w);
      for (let y = 0; y < h; y++) out.set(a.subarray(y * s.width, y * s.width + w), y * w);
      return out;
    };
    const shape = [1, 1, h, w];
    const total = noGrad(() =>
      tidy(() => {
        const ir = Tensor.fromArray(take(s.ir), shape);
        const vis = Tensor.fromArray(take(s.vis), shape);
        const mask = Tensor.fromArray(s.mask ? take(s.mask) : new Float32Array(h * w), shape);
        const out = net.forward(ir, vis, s.mask ? mask : null);
        return fusionLosses(net.config, out.fused, vis, ir, mask, out.auxLoss).total;
      }),
    );
    sum += await total.item();
    total.dispose();
  }
  return sum / Math.max(1, source.count);
}

export async function runTrain(a: TrainArgs): Promise<void> {
  ensureWritableDir(a.out, '--out');
  const checkpoint = join(a.out, 'checkpoint.safetensors');
  const logFile = join(a.out, 'log.jsonl');
  if (a.resume && !existsSync(checkpoint)) throw new UserError(`--resume: ${checkpoint} does not exist`);
  if (!a.resume && existsSync(checkpoint))
    throw new UserError(`${a.out} already holds a run (checkpoint.safetensors): pass --resume to continue it, or choose another --out`);
  const opts = optionsFrom(a);

  const pairs: Array<ImagePair & { boxes: BoxSource | null }> = [];
  for (const root of a.data) {
    const ds = openDataset(root, { split: a.split });
    for (const p of ds.pairs) pairs.push({ ...p, boxes: ds.boxes });
  }
  const valFraction = Number(a.valFraction);
  const { train, val } = valFraction > 0 ? splitPairs(pairs, { valFraction, seed: opts.seed }) : { train: pairs, val: [] };
  if (!train.length) throw new UserError('no training pairs left after the validation split');

  await initEngine();
  const cfg = DEFAULT_CONFIG;
  const params = a.init ? loadWeights(a.init, cfg) : initParameters(cfg, opts.seed);
  const net = new FusionNet(params, cfg);
  const trainer = new Trainer(net, new PairSource(train), opts);
  const valSource = new PairSource(val);
  let log: string[] = [];
  if (a.resume) {
    await trainer.loadCheckpoint(checkpoint);
    // Keep the log consistent with the checkpoint: drop lines of steps that were lost.
    log = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l && (JSON.parse(l).step ?? 0) <= trainer.step)
      : [];
  }
  console.log(`training on ${train.length} pairs (validation ${val.length}), ${opts.steps} steps, batch ${opts.batchSize}, crop ${opts.crop ? opts.crop.join('×') : 'none'}${a.resume ? `, resuming at step ${trainer.step}` : ''}`);

  const every = positive('--checkpoint-every', a.checkpointEvery);
  const valEvery = positive('--val-every', a.valEvery);
  const bar = createProgress(opts.steps, 'training');
  bar.update(trainer.step);
  const save = async () => {
    await trainer.saveCheckpoint(checkpoint);
    await writeFileAtomic(logFile, log.map((l) => l + '\n').join(''));
    const curve = lineChart([log.map((l) => JSON.parse(l)).filter((r) => r.total !== undefined).map((r) => [r.step, r.total] as [number, number])]);
    await writeImage(join(a.out, 'loss.png'), curve.data, curve.width, curve.height, 3);
  };
  while (trainer.step < opts.steps) {
    const r = await trainer.trainStep();
    if (!Number.isFinite(r.total)) throw new UserError(`the loss became ${r.total} at step ${r.step}; lower --lr`);
    log.push(JSON.stringify({ ...r, time: new Date().toISOString() }));
    bar.tick({ loss: r.total.toFixed(4), lr: r.lr.toExponential(1) });
    if (val.length && (r.step % valEvery === 0 || r.step === opts.steps)) {
      const v = await validationLoss(net, valSource, opts.crop);
      log.push(JSON.stringify({ step: r.step, validation: v }));
    }
    if (r.step % every === 0 || r.step === opts.steps) await save();
  }
  bar.stop();
  await saveWeights(join(a.out, 'weights.safetensors'), params, cfg, { metadata: { steps: String(trainer.step) } });
  console.log(`done: ${trainer.step} steps; weights in ${join(a.out, 'weights.safetensors')}`);
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train MoE-Fusion on infrared/visible pairs (from scratch, --init WEIGHTS, or --resume)')
    .requiredOption('--data <dir...>', 'dataset folder(s): ir/+vi/ (or M3FD, LLVIP, MSRS layouts), optional labels')
    .option('--split <name>', 'split folder inside the dataset (train, test, …)')
    .requiredOption('--out <dir>', 'run folder: checkpoint, weights, log.jsonl, loss.png')
    .option('--steps <n>', 'optimisation steps', '1000')
    .option('--batch <n>', 'batch size', '4')
    .option('--crop <size>', 'random crop HEIGHTxWIDTH (or SIZE), or none for whole images', '256')
    .option('--lr <x>', 'learning rate (Adam)', '1e-4')
    .option('--weight-decay <x>', 'Adam weight decay', '1e-4')
    .option('--clip <x>', 'gradient-norm clip', '35')
    .option('--milestones <steps>', 'comma-separated steps where lr is multiplied by --gamma (default: 2/3 and 11/12 of --steps)')
    .option('--gamma <x>', 'learning-rate factor at milestones', '0.1')
    .option('--seed <n>', 'seed of initialisation, crops, noise and the validation split', '0')
    .option('--attention <mode>', 'attention map: boxes (from labels, else 0.5) or none (0.5)', 'boxes')
    .option('--val-fraction <x>', 'share of pairs held out for validation (seeded, stable)', '0.1')
    .option('--val-every <n>', 'steps between validation passes', '100')
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--init <weights>', 'start from these weights')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .action(async (opts: TrainArgs) => runTrain(opts));
}
