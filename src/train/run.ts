/**
 * A training run in a folder, as `moefusion train` starts it: from scratch, from a weights file (init) or from the
 * folder's own checkpoint (resume, which continues exactly where a killed run stopped). Everything the run needs is
 * checked before the folder is created; a run that fails before its first checkpoint removes the folder it created.
 * Writes to the folder: checkpoint.safetensors (atomic, every `checkpointEvery` steps and at the end),
 * weights.safetensors (reference names), log.jsonl (one line per step, plus a validation line after each epoch)
 * and loss.png (training loss, and validation loss in the second colour).
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { initEngine } from '../tensor/engine.ts';
import { GpuError } from '../runtime/errors.ts';
import { DEFAULT_CONFIG, type FusionConfig } from '../model/config.ts';
import { FusionNet } from '../model/fusion-net.ts';
import { loadWeightsWithConfig, saveWeights } from '../model/weights-file.ts';
import { Detector } from '../model/detector/network.ts';
import { DEFAULT_DETECTOR_CONFIG, M3FD_CLASSES } from '../model/detector/config.ts';
import { detectorFromFile, hasDetector } from '../model/detector/weights.ts';
import { openDataset, splitPairs } from '../io/dataset.ts';
import { lineChartSvg, writeSvgImage } from '../io/charts.ts';
import { readSafetensors } from '../io/safetensors-file.ts';
import { ensureWritableDir, OutputError, writeFileAtomic } from '../io/atomic.ts';
import { PairSource, type LabelledPair } from './data.ts';
import { Trainer, type StepResult } from './trainer.ts';
import { formatOption, TRAIN_OPTION_KEYS, TRAIN_OPTIONS, type TrainOptions } from './options.ts';
import { readCheckpoint, restoreCheckpoint, saveCheckpoint, type Checkpoint, type DataRecord } from './checkpoint.ts';
import { Validator, type BaselineScores, type ValidationScores } from './validation.ts';
import { ATTENTION_METADATA_KEY, inferenceAttention } from '../model/attention.ts';
import { TrainingError } from './errors.ts';

/** Settings a resumed run takes from its checkpoint unless given again, and then they must match it. */
export type RunSetting = keyof TrainOptions | 'valFraction' | 'gateGrids' | 'classes';

export interface RunSettings {
  /** Dataset folders, and the split folder inside them. */
  data: string[];
  split?: string;
  /** The run folder. */
  out: string;
  /** Training options (defaults filled in). */
  options: TrainOptions;
  /** Share of the pairs held out for validation, in [0, 1). */
  valFraction: number;
  /** Validate every this many steps instead of after each epoch (validation always runs at the end). */
  valEvery: number | null;
  checkpointEvery: number;
  /** Gate grids of a new network (null: the reference's, or those of the init weights or the checkpoint). */
  gateGrids: Pick<FusionConfig, 'localGate' | 'globalGate'> | null;
  /** Classes of a new detector (null: M3FD's when every label is one of them, else the labels found). */
  classes: string[] | null;
  /** Weights to start from. */
  init?: string;
  /** Continue the run in `out` from its checkpoint. */
  resume: boolean;
  /** Keep the weights of every validated step (snapshotName). */
  snapshots?: boolean;
  /** The settings the user gave; when resuming, the others come from the checkpoint. */
  given: ReadonlySet<RunSetting>;
}

/** Progress of the steps as the caller shows it. */
export interface RunProgress {
  tick(fields?: Record<string, number | string>): void;
  stop(): void;
}

export interface RunReporter {
  line(message: string): void;
  /** A progress display for `total` steps, starting at `start` (a resumed run's step). */
  progress(total: number, label: string, start: number): RunProgress;
}

/** A line of log.jsonl: a training step's losses, or the validation after it. */
export interface LogRecord extends Partial<StepResult> {
  step: number;
  time?: string;
  epoch?: number;
  validation?: ValidationScores;
  /** The training-free fusions on the validation frames (logged once, when the run starts). */
  baselines?: BaselineScores;
}

/** Output files of a run; a killed run may leave their writers' temporary files behind. */
export const RUN_FILES = ['checkpoint.safetensors', 'weights.safetensors', 'log.jsonl', 'loss.png'];

/** With --snapshots, the weights of each validated step, so that the best validated ones can be picked later. */
export const snapshotName = (step: number): string => `weights-step${step}.safetensors`;

/** `--gate-grids` as written: LOCAL_WxH,GLOBAL_WxH (the grids are stored [height, width]). */
const formatGrids = (c: Pick<FusionConfig, 'localGate' | 'globalGate'>) => `${c.localGate[1]}x${c.localGate[0]},${c.globalGate[1]}x${c.globalGate[0]}`;

const KEEPS = 'a resumed run keeps its settings (only --steps may change): leave the option out, or start a new run in another --out';

function mismatch(flag: string, given: string, stored: string): TrainingError {
  return new TrainingError(`${flag} ${given} differs from the checkpoint's ${stored}: ${KEEPS}`);
}

/** The options of a resumed run: the checkpoint's, where the given ones must agree; --steps may differ. */
function resumedOptions(s: RunSettings, ck: Checkpoint): TrainOptions {
  const stored = ck.meta.options;
  const opts = { ...stored };
  for (const key of TRAIN_OPTION_KEYS) {
    if (TRAIN_OPTIONS[key].mayRaise || !s.given.has(key)) continue;
    const [a, b] = [formatOption(key, s.options[key]), formatOption(key, stored[key])];
    if (JSON.stringify(s.options[key]) !== JSON.stringify(stored[key])) throw mismatch(TRAIN_OPTIONS[key].flag, a, b);
  }
  if (s.given.has('steps')) {
    if (s.options.steps < ck.meta.step) throw new TrainingError(`--steps ${s.options.steps} is below the checkpoint's step ${ck.meta.step}: a resumed run only goes on`);
    opts.steps = s.options.steps;
  }
  return opts;
}

function listSome(names: string[]): string {
  return names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
}

/** Refuses data other than the checkpoint's: other folders, split, validation share or pairs. */
function checkSameData(now: DataRecord, then: DataRecord): void {
  if (now.folders.join('\n') !== then.folders.join('\n')) throw mismatch('--data', now.folders.join(' '), then.folders.join(' '));
  if (now.split !== then.split) throw mismatch('--split', now.split ?? '(none)', then.split ?? '(none)');
  for (const side of ['train', 'val'] as const) {
    if (now[side].join('\n') === then[side].join('\n')) continue;
    const [a, b] = [new Set(now[side]), new Set(then[side])];
    const added = now[side].filter((n) => !b.has(n));
    const missing = then[side].filter((n) => !a.has(n));
    const what = side === 'train' ? 'training' : 'validation';
    const detail = [added.length ? `new: ${listSome(added)}` : '', missing.length ? `missing: ${listSome(missing)}` : ''].filter(Boolean).join('; ');
    throw new TrainingError(
      `--data ${now.folders.join(' ')}: the ${what} pairs differ from the checkpoint's (${now[side].length} now, ${then[side].length} then${detail ? `; ${detail}` : ''}): ${KEEPS}`,
    );
  }
}

/** The classes of a new detector: the given ones, else M3FD's when every label of the data is one of them, else the data's own labels (sorted). */
function detectorClasses(classes: string[] | null, pairs: LabelledPair[]): string[] {
  if (classes) return classes;
  const labels = new Set<string>();
  for (const p of pairs) for (const b of p.boxes?.read(p.name, { width: 1, height: 1 }) ?? []) labels.add(b.label);
  return [...labels].every((l) => M3FD_CLASSES.includes(l)) ? M3FD_CLASSES : [...labels].sort();
}

/** The jointly trained detector of attention 'detector': the checkpoint's (its values restored later), the init file's, or a new one. */
function createDetector(s: RunSettings, opts: TrainOptions, pairs: LabelledPair[], ck: Checkpoint | null): Detector | null {
  if (opts.attention !== 'detector') return null;
  if (ck?.meta.detector) return Detector.init(ck.meta.detector);
  if (s.init) {
    const file = readSafetensors(s.init);
    if (hasDetector(file)) {
      try {
        return detectorFromFile(file, s.init);
      } catch (e) {
        if (e instanceof GpuError) throw e;
        throw new TrainingError((e as Error).message);
      }
    }
  }
  const config = { ...DEFAULT_DETECTOR_CONFIG, classes: detectorClasses(s.classes, pairs) };
  return Detector.init(config, opts.seed);
}

/** Scores as `EN 6.9, SD 40.1, …`; nested ones (the stretched output's) in brackets after their name. */
function formatScores(v: object): string {
  return Object.entries(v).map(([k, x]) => (typeof x === 'number' ? `${k} ${x.toPrecision(4)}` : `${k} (${formatScores(x as object)})`)).join(', ');
}

/** Removes temporary files of our outputs left by a killed run (names of io/atomic.ts, io/image.ts, io/safetensors.ts). */
function removeStaleTemporaries(dir: string): void {
  for (const name of readdirSync(dir))
    if (RUN_FILES.some((f) => name.startsWith(`${f}.tmp-`) || (name.startsWith(`.${f}.`) && name.endsWith('.tmp'))) || /^\.weights-step\d+\.safetensors\..*\.tmp$/.test(name))
      rmSync(join(dir, name), { force: true });
}

/** The outermost folder of `dir` that does not exist yet (what creating `dir` creates), or null when it exists. */
function outermostMissing(dir: string): string | null {
  let d = resolve(dir);
  if (existsSync(d)) return null;
  while (!existsSync(dirname(d))) d = dirname(d);
  return d;
}

/** Runs the training described by `s` to its last step. */
export async function runTraining(s: RunSettings, report: RunReporter): Promise<void> {
  // ---- everything is checked before the run folder is created ----
  const pairs: LabelledPair[] = [];
  for (const root of s.data) {
    const ds = openDataset(root, { split: s.split });
    for (const p of ds.pairs) pairs.push({ ...p, boxes: ds.boxes });
  }
  if (s.init && !s.resume && !existsSync(s.init)) throw new TrainingError(`--init ${s.init}: no such file`);
  if (existsSync(s.out) && !statSync(s.out).isDirectory()) throw new OutputError(`--out ${s.out}`, 'exists and is not a folder');
  const checkpoint = join(s.out, 'checkpoint.safetensors');
  const logFile = join(s.out, 'log.jsonl');
  if (!s.resume && existsSync(checkpoint))
    throw new TrainingError(`${s.out} already holds a run (checkpoint.safetensors): pass --resume to continue it, or choose another --out`);
  if (s.resume && !existsSync(checkpoint)) throw new TrainingError(`--resume: ${checkpoint} does not exist`);
  let ck: Checkpoint | null = null;
  if (s.resume) {
    try {
      ck = readCheckpoint(checkpoint);
    } catch (e) {
      throw e instanceof TrainingError ? new TrainingError(`cannot resume: ${e.message}`) : e;
    }
  }
  const opts = ck ? resumedOptions(s, ck) : s.options;
  const stored = ck?.meta.data;
  if (stored && s.given.has('valFraction') && s.valFraction !== stored.valFraction) throw mismatch('--val-fraction', String(s.valFraction), String(stored.valFraction));
  const valFraction = stored && !s.given.has('valFraction') ? stored.valFraction : s.valFraction;
  // One pair cannot be split: it trains, and nothing is validated.
  const { train, val } = valFraction > 0 && pairs.length > 1 ? splitPairs(pairs, { valFraction, seed: opts.seed }) : { train: pairs, val: [] };
  const data: DataRecord = {
    folders: s.data.map((d) => resolve(d)),
    split: s.split ?? null,
    valFraction,
    train: train.map((p) => p.name),
    val: val.map((p) => p.name),
  };
  if (stored) checkSameData(data, stored);
  if (opts.attention === 'detector') {
    if (!pairs.some((p) => p.boxes)) throw new TrainingError(`--attention detector needs boxes: ${s.data.join(', ')} has no labels folder (VOC, YOLO or COCO)`);
    const trained = ck ? ck.meta.detector : undefined;
    if (trained === null) throw new TrainingError(`cannot resume with --attention detector: the checkpoint was trained without a detector`);
    if (trained && s.classes && s.classes.join() !== trained.classes.join()) throw mismatch('--classes', s.classes.join(','), trained.classes.join(','));
  }
  const grids = s.gateGrids;
  if (ck && grids && formatGrids(grids) !== formatGrids(ck.meta.config)) throw mismatch('--gate-grids', formatGrids(grids), formatGrids(ck.meta.config));

  await initEngine();
  // The network's configuration: the checkpoint's, else the --init file's, else the reference's (--gate-grids).
  const net = s.init && !ck ? loadWeightsWithConfig(s.init) : FusionNet.init(ck?.meta.config ?? { ...DEFAULT_CONFIG, ...grids }, opts.seed);
  if (grids && formatGrids(grids) !== formatGrids(net.config))
    throw new TrainingError(`--gate-grids ${formatGrids(grids)} differs from the --init weights (${formatGrids(net.config)})`);
  const detector = createDetector(s, opts, pairs, ck);
  const trainer = new Trainer(net, new PairSource(train, opts), opts, detector);
  const validator = new Validator(net, new PairSource(val, { ...opts, flip: false, cropScale: [1, 1] }), {
    attention: opts.attention,
    target: opts.target,
    gradGain: opts.gradGain,
    pixelWeight: opts.pixelWeight,
    detector,
    size: opts.valSize,
    warn: (m) => report.line(m),
  });
  let log: LogRecord[] = [];
  if (ck) {
    try {
      restoreCheckpoint(trainer, ck);
    } catch (e) {
      if (e instanceof TrainingError) throw new TrainingError(`cannot resume: ${e.message}`);
      throw e;
    }
    // Keep the log consistent with the checkpoint: drop lines of steps that were lost.
    log = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogRecord).filter((r) => r.step <= trainer.step)
      : [];
  }

  // ---- the run ----
  const created = outermostMissing(s.out);
  ensureWritableDir(s.out, '--out');
  try {
    removeStaleTemporaries(s.out);
    // The weights as `fuse` reads them, with the steps and the attention mode they were trained with.
    const writeWeights = (path: string) =>
      saveWeights(path, net, {
        metadata: { steps: String(trainer.step), [ATTENTION_METADATA_KEY]: inferenceAttention(opts.attention) },
        detector,
      });
    await loop(s, report, { trainer, validator, log, data, checkpoint, logFile, trainCount: train.length, valCount: val.length, resumed: !!ck, writeWeights });
    await writeWeights(join(s.out, 'weights.safetensors'));
    report.line(`done: ${trainer.step} steps; weights in ${join(s.out, 'weights.safetensors')}`);
  } catch (e) {
    // A folder this run created and that holds no checkpoint yet has nothing worth keeping.
    if (created && !existsSync(checkpoint)) rmSync(created, { recursive: true, force: true });
    throw e;
  }
}

interface LoopState {
  trainer: Trainer;
  validator: Validator;
  log: LogRecord[];
  data: DataRecord;
  checkpoint: string;
  logFile: string;
  trainCount: number;
  valCount: number;
  resumed: boolean;
  writeWeights(path: string): Promise<void>;
}

async function loop(s: RunSettings, report: RunReporter, st: LoopState): Promise<void> {
  const { trainer, validator, log } = st;
  const opts = trainer.opts;
  const stepsPerEpoch = Math.ceil(st.trainCount / opts.batchSize);
  report.line(
    `training on ${st.trainCount} pairs (validation ${st.valCount}), ${opts.steps} steps, batch ${opts.batchSize} (${stepsPerEpoch} steps per epoch), ` +
      `crop ${formatOption('crop', opts.crop)}${st.resumed ? `, resuming at step ${trainer.step}` : ''}`,
  );
  if (st.valCount && !log.some((r) => r.baselines)) {
    const baselines = await validator.baselines();
    log.push({ step: trainer.step, baselines });
    for (const [method, b] of Object.entries(baselines)) report.line(`baseline ${method} on the validation frames: ${formatScores(b)}`);
    // A run from given weights is validated before its first step too: where fine-tuning starts from.
    if (s.init && !st.resumed) {
      const validation = await validator.run();
      log.push({ step: 0, epoch: 0, validation });
      report.line(`step 0 (the --init weights) validation: ${formatScores(validation)}`);
    }
  }
  const bar = report.progress(opts.steps, 'training', trainer.step);
  // The log goes first: lines past the checkpoint's step are dropped on resume, lines missing could not be.
  const save = async () => {
    await writeFileAtomic(st.logFile, log.map((r) => JSON.stringify(r) + '\n').join(''));
    await saveCheckpoint(st.checkpoint, trainer, st.data);
    const series = (pick: (r: LogRecord) => number | undefined) =>
      log.flatMap((r) => (pick(r) === undefined ? [] : [[r.step, pick(r)!] as [number, number]]));
    const curve = lineChartSvg(
      [{ name: 'training loss', points: series((r) => r.total) }, { name: 'validation loss', points: series((r) => r.validation?.loss) }],
      { title: 'MoE-Fusion training', xLabel: 'step', yLabel: 'loss' },
    );
    await writeSvgImage(join(s.out, 'loss.png'), curve);
  };
  while (trainer.step < opts.steps) {
    const r = await trainer.trainStep();
    if (!Number.isFinite(r.total)) throw new TrainingError(`the loss became ${r.total} at step ${r.step}; lower --lr`);
    log.push({ ...r, time: new Date().toISOString() });
    bar.tick({ loss: r.total, lr: r.lr });
    const epochEnd = r.step % stepsPerEpoch === 0;
    const due = s.valEvery === null ? epochEnd : r.step % s.valEvery === 0;
    if (st.valCount && (due || r.step === opts.steps)) {
      const validation = await validator.run();
      const epoch = Math.round((100 * r.step) / stepsPerEpoch) / 100;
      log.push({ step: r.step, epoch, validation });
      report.line(`step ${r.step} (epoch ${epoch}) validation: ${formatScores(validation)}`);
      if (s.snapshots) await st.writeWeights(join(s.out, snapshotName(r.step)));
    }
    if (r.step % s.checkpointEvery === 0 || r.step === opts.steps) await save();
  }
  bar.stop();
}
