/**
 * `moefusion train --data DIR --out RUN_DIR [options]`: trains the fusion network on the GPU from scratch, from a
 * weights file (--init) or from the run's own checkpoint (--resume, which continues exactly where a killed run
 * stopped). Writes to RUN_DIR: checkpoint.safetensors (atomic, every --checkpoint-every steps and at the end),
 * weights.safetensors (reference names), log.jsonl (one line per step, plus a validation line after each epoch) and
 * loss.png (training loss, and validation loss in the second colour).
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { initEngine } from '../tensor/engine.ts';
import { GpuError } from '../runtime/errors.ts';
import { DEFAULT_CONFIG, type FusionConfig } from '../model/config.ts';
import { FusionNet } from '../model/fusion-net.ts';
import { initParameters, type ParamSet } from '../model/parameters.ts';
import { loadWeightsWithConfig, saveWeights } from '../model/weights-file.ts';
import { Trainer, referenceOptions, type AttentionMode, type SampleSource, type StepResult, type TrainingSample, type TrainOptions } from '../model/trainer.ts';
import { Detector } from '../model/detector/network.ts';
import { DEFAULT_DETECTOR_CONFIG, M3FD_CLASSES, type DetectorConfig } from '../model/detector/config.ts';
import { initDetectorTensors } from '../model/detector/parameters.ts';
import { detectorFromFile, detectorToHost, hasDetector } from '../model/detector/weights.ts';
import { openDataset, splitPairs, type ImagePair } from '../io/dataset.ts';
import { boxMask, type BoxSource } from '../io/boxes.ts';
import { readImage } from '../io/image.ts';
import { toGray01 } from '../io/color.ts';
import { lineChartSvg, writeSvgImage } from '../io/charts.ts';
import { readSafetensors } from '../io/safetensors-file.ts';
import type { SafetensorsFile } from '../io/safetensors.ts';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.ts';
import { UserError } from './errors.ts';
import { createProgress } from './progress.ts';
import { Validator, type ValidationScores } from './train-validation.ts';

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
  attention: AttentionMode;
  classes?: string;
  valFraction: string;
  valEvery?: string;
  checkpointEvery: string;
  gateGrids?: string;
  init?: string;
  resume?: boolean;
}

/**
 * Decodes pairs lazily and keeps them (gray floats) for the next passes. Checks what the trainer needs of each
 * image (at least the crop; one size for all when whole images are batched), so that the error names the file.
 */
class PairSource implements SampleSource {
  private cache = new Map<number, TrainingSample>();
  private firstSize: string | null = null;
  constructor(
    private pairs: Array<ImagePair & { boxes: BoxSource | null }>,
    private opts: Pick<TrainOptions, 'crop' | 'batchSize'>,
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
    const { crop, batchSize } = this.opts;
    if (crop && (ir.height < crop[0] || ir.width < crop[1]))
      throw new UserError(`${p.ir} is ${ir.width}×${ir.height}, smaller than --crop ${crop[0]}x${crop[1]} (HEIGHTxWIDTH)`);
    const size = `${ir.width}×${ir.height}`;
    this.firstSize ??= size;
    if (!crop && batchSize > 1 && size !== this.firstSize)
      throw new UserError(`${p.ir} is ${size} but other pairs are ${this.firstSize}: batching whole images needs one size; use --crop or --batch 1`);
    const boxes = p.boxes?.read(p.name, { width: ir.width, height: ir.height }) ?? [];
    const s: TrainingSample = {
      width: ir.width,
      height: ir.height,
      ir: toGray01(ir, 'first'),
      vis: toGray01(vi, 'luma'),
      mask: boxes.length ? boxMask(boxes, ir.width, ir.height) : undefined,
      boxes,
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
  if (!m || Number(m[1]) < 1 || Number(m[2] ?? 1) < 1) throw new UserError(`--crop ${v}: expected SIZE, HEIGHTxWIDTH (positive integers) or none`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}

const ATTENTION_MODES: AttentionMode[] = ['boxes', 'none', 'detector'];

function optionsFrom(a: TrainArgs): TrainOptions {
  if (!ATTENTION_MODES.includes(a.attention)) throw new UserError(`--attention ${a.attention}: expected one of ${ATTENTION_MODES.join(', ')}`);
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

/** `--gate-grids 120x160,60x80`: the local and global gate grids of a network trained from scratch. */
function parseGateGrids(v: string): Pick<FusionConfig, 'localGate' | 'globalGate'> {
  const m = /^(\d+)x(\d+),(\d+)x(\d+)$/.exec(v);
  const sizes = m ? m.slice(1).map(Number) : [];
  if (!m || sizes.some((n) => n < 1)) throw new UserError(`--gate-grids ${v}: expected LOCAL_HxW,GLOBAL_HxW, e.g. 120x160,60x80`);
  return { localGate: [sizes[0], sizes[1]], globalGate: [sizes[2], sizes[3]] };
}

/** Output files of a run; a killed run may leave their writers' temporary files behind. */
const RUN_FILES = ['checkpoint.safetensors', 'weights.safetensors', 'log.jsonl', 'loss.png'];

/** Removes temporary files of our outputs left by a killed run (names of io/atomic.ts, io/image.ts, io/safetensors.ts). */
function removeStaleTemporaries(dir: string): void {
  for (const name of readdirSync(dir))
    if (RUN_FILES.some((f) => name.startsWith(`${f}.tmp-`) || (name.startsWith(`.${f}.`) && name.endsWith('.tmp'))))
      rmSync(join(dir, name), { force: true });
}

/** Reads the checkpoint to resume from, with its network configuration; a damaged file is named and left alone. */
function readCheckpoint(file: string): { contents: SafetensorsFile; config: FusionConfig; detector: DetectorConfig | null } {
  if (!existsSync(file)) throw new UserError(`--resume: ${file} does not exist`);
  let contents: SafetensorsFile;
  try {
    contents = readSafetensors(file);
  } catch (e) {
    throw new UserError(`cannot resume: ${(e as Error).message} (the checkpoint is damaged; it was left as it is)`);
  }
  const meta = contents.metadata['moefusion.checkpoint'];
  let parsed: { config?: FusionConfig; detector?: DetectorConfig | null } = {};
  try {
    parsed = meta ? JSON.parse(meta) : {};
  } catch {
    parsed = {};
  }
  if (!parsed.config) throw new UserError(`cannot resume: ${file} is not a moefusion training checkpoint (no readable 'moefusion.checkpoint' metadata)`);
  return { contents, config: parsed.config, detector: parsed.detector ?? null };
}

/**
 * The classes of a new detector: --classes, else M3FD's when every label of the data is one of them, else the
 * data's own labels (sorted).
 */
function detectorClasses(a: TrainArgs, pairs: Array<ImagePair & { boxes: BoxSource | null }>): string[] {
  if (a.classes) {
    const list = a.classes.split(',').map((c) => c.trim()).filter(Boolean);
    if (!list.length) throw new UserError(`--classes ${a.classes}: expected comma-separated class names`);
    return list;
  }
  const labels = new Set<string>();
  for (const p of pairs) for (const b of p.boxes?.read(p.name, { width: 1, height: 1 }) ?? []) labels.add(b.label);
  return [...labels].every((l) => M3FD_CLASSES.includes(l)) ? M3FD_CLASSES : [...labels].sort();
}

/** A line of log.jsonl: a training step's losses, or the validation after it. */
interface LogRecord extends Partial<StepResult> {
  step: number;
  time?: string;
  epoch?: number;
  validation?: ValidationScores;
}

function formatScores(v: ValidationScores): string {
  return Object.entries(v).map(([k, x]) => `${k} ${x.toPrecision(4)}`).join(', ');
}

/** The jointly trained detector of --attention detector: the checkpoint's, the --init file's, or a new one. */
function createDetector(a: TrainArgs, pairs: Array<ImagePair & { boxes: BoxSource | null }>, resumed: ReturnType<typeof readCheckpoint> | null): Detector | null {
  if (a.attention !== 'detector') return null;
  if (!pairs.some((p) => p.boxes)) throw new UserError(`--attention detector needs boxes: ${a.data.join(', ')} has no labels folder (VOC, YOLO or COCO)`);
  if (resumed) {
    if (!resumed.detector) throw new UserError(`cannot resume with --attention detector: the checkpoint was trained without a detector`);
    return new Detector(initDetectorTensors(resumed.detector), resumed.detector);
  }
  if (a.init) {
    const file = readSafetensors(a.init);
    if (hasDetector(file)) {
      const { tensors, config } = detectorFromFile(file, a.init);
      return new Detector(tensors, config);
    }
  }
  const config = { ...DEFAULT_DETECTOR_CONFIG, classes: detectorClasses(a, pairs) };
  return new Detector(initDetectorTensors(config, Number(a.seed)), config);
}

export async function runTrain(a: TrainArgs): Promise<void> {
  const opts = optionsFrom(a);
  const every = positive('--checkpoint-every', a.checkpointEvery);
  const valEvery = a.valEvery === undefined ? null : positive('--val-every', a.valEvery);
  const grids = a.gateGrids ? parseGateGrids(a.gateGrids) : null;
  const valFraction = Number(a.valFraction);
  if (!(valFraction >= 0 && valFraction < 1)) throw new UserError(`--val-fraction ${a.valFraction}: expected a number in [0, 1)`);

  const pairs: Array<ImagePair & { boxes: BoxSource | null }> = [];
  for (const root of a.data) {
    const ds = openDataset(root, { split: a.split });
    for (const p of ds.pairs) pairs.push({ ...p, boxes: ds.boxes });
  }
  // One pair cannot be split: it trains, and nothing is validated.
  const { train, val } = valFraction > 0 && pairs.length > 1 ? splitPairs(pairs, { valFraction, seed: opts.seed }) : { train: pairs, val: [] };

  ensureWritableDir(a.out, '--out');
  const checkpoint = join(a.out, 'checkpoint.safetensors');
  const logFile = join(a.out, 'log.jsonl');
  if (!a.resume && existsSync(checkpoint))
    throw new UserError(`${a.out} already holds a run (checkpoint.safetensors): pass --resume to continue it, or choose another --out`);
  const resumed = a.resume ? readCheckpoint(checkpoint) : null;
  removeStaleTemporaries(a.out);

  await initEngine();
  // The network's configuration: the checkpoint's, else the --init file's, else the reference's (--gate-grids).
  let cfg: FusionConfig = resumed?.config ?? { ...DEFAULT_CONFIG, ...grids };
  let params: ParamSet;
  if (a.init && !resumed) ({ params, config: cfg } = loadWeightsWithConfig(a.init));
  else params = initParameters(cfg, opts.seed);
  if (grids && (grids.localGate.join() !== cfg.localGate.join() || grids.globalGate.join() !== cfg.globalGate.join()))
    throw new UserError(`--gate-grids ${a.gateGrids} differs from the ${resumed ? 'checkpoint' : '--init weights'} (${cfg.localGate.join('x')},${cfg.globalGate.join('x')})`);
  const net = new FusionNet(params, cfg);
  const detector = createDetector(a, pairs, resumed);
  const trainer = new Trainer(net, new PairSource(train, opts), opts, detector);
  const validator = new Validator(net, new PairSource(val, opts), { attention: opts.attention, detector, warn: (m) => console.log(m) });
  let log: LogRecord[] = [];
  if (resumed) {
    try {
      await trainer.loadCheckpoint(checkpoint, resumed.contents);
    } catch (e) {
      if (e instanceof GpuError) throw e;
      throw new UserError(`cannot resume: ${(e as Error).message}`);
    }
    // Keep the log consistent with the checkpoint: drop lines of steps that were lost.
    log = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogRecord).filter((r) => r.step <= trainer.step)
      : [];
  }
  const stepsPerEpoch = Math.ceil(train.length / opts.batchSize);
  console.log(
    `training on ${train.length} pairs (validation ${val.length}), ${opts.steps} steps, batch ${opts.batchSize} (${stepsPerEpoch} steps per epoch), ` +
      `crop ${opts.crop ? opts.crop.join('×') : 'none'}${resumed ? `, resuming at step ${trainer.step}` : ''}`,
  );

  const bar = createProgress(opts.steps, 'training');
  bar.update(trainer.step);
  // The log goes first: lines past the checkpoint's step are dropped on resume, lines missing could not be.
  const save = async () => {
    await writeFileAtomic(logFile, log.map((r) => JSON.stringify(r) + '\n').join(''));
    await trainer.saveCheckpoint(checkpoint);
    const series = (pick: (r: LogRecord) => number | undefined) =>
      log.flatMap((r) => (pick(r) === undefined ? [] : [[r.step, pick(r)!] as [number, number]]));
    const curve = lineChartSvg(
      [{ name: 'training loss', points: series((r) => r.total) }, { name: 'validation loss', points: series((r) => r.validation?.loss) }],
      { title: 'MoE-Fusion training', xLabel: 'step', yLabel: 'loss' },
    );
    await writeSvgImage(join(a.out, 'loss.png'), curve);
  };
  while (trainer.step < opts.steps) {
    const r = await trainer.trainStep();
    if (!Number.isFinite(r.total)) throw new UserError(`the loss became ${r.total} at step ${r.step}; lower --lr`);
    log.push({ ...r, time: new Date().toISOString() });
    bar.tick({ loss: r.total, lr: r.lr });
    const epochEnd = r.step % stepsPerEpoch === 0;
    if (val.length && (epochEnd || r.step === opts.steps || (valEvery !== null && r.step % valEvery === 0))) {
      const validation = await validator.run();
      const epoch = Math.round((100 * r.step) / stepsPerEpoch) / 100;
      log.push({ step: r.step, epoch, validation });
      console.log(`step ${r.step} (epoch ${epoch}) validation: ${formatScores(validation)}`);
    }
    if (r.step % every === 0 || r.step === opts.steps) await save();
  }
  bar.stop();
  const detectorFiles = detector ? await detectorToHost(detector.tensors, detector.config) : null;
  await saveWeights(join(a.out, 'weights.safetensors'), params, cfg, {
    metadata: { steps: String(trainer.step), ...detectorFiles?.metadata },
    extraTensors: detectorFiles?.tensors,
  });
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
    .option('--attention <mode>', 'attention map: boxes (from labels, else 0.5), none (0.5), or detector (detectors trained jointly on the labels)', 'boxes')
    .option('--classes <names>', 'detector classes, comma-separated (default: M3FD\'s, or the labels found in the data)')
    .option('--val-fraction <x>', 'share of pairs held out for validation (seeded, stable)', '0.1')
    .option('--val-every <n>', 'also validate every <n> steps (validation always runs after each epoch and at the end)')
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--gate-grids <grids>', 'gate grids LOCAL_HxW,GLOBAL_HxW of a new network (default: the reference, 120x160,60x80)')
    .option('--init <weights>', 'start from these weights (and their configuration)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .action(async (opts: TrainArgs) => runTrain(opts));
}
