/**
 * `moefusion train --data DIR --out RUN_DIR [options]`: the flags, checked up front (each bad value is named with
 * its flag), become the settings of a run (src/train/run.ts), which trains the fusion network from scratch, from a
 * weights file (--init) or from the run's own checkpoint (--resume).
 */
import { Command } from 'commander';
import type { FusionConfig } from '../model/config.ts';
import { ATTENTION_MODES, referenceMilestones, type AttentionMode, type ForegroundMode, type TrainOptions } from '../train/trainer.ts';
import { runTraining, RUN_FILES, type RunSetting, type RunSettings } from '../train/run.ts';
import { UsageError } from './errors.ts';
import { checkOutputs } from './outputs.ts';
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
  attention: string;
  foreground: string;
  schedule: string;
  warmup: string;
  flip?: boolean;
  classes?: string;
  valFraction: string;
  valEvery?: string;
  checkpointEvery: string;
  gateGrids?: string;
  init?: string;
  resume?: boolean;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** Largest --seed: seed + 1 seeds the trainer's 32-bit generator. */
const MAX_SEED = 2 ** 32 - 2;

function positiveInteger(flag: string, v: string): number {
  const n = Number(v);
  if (!INTEGER.test(v) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} ${v}: expected a positive integer`);
  return n;
}

/** A finite number in decimal notation within [min, ∞) (or (min, ∞) when `above`). */
function number(flag: string, v: string, min: number, above: boolean): number {
  const n = Number(v);
  if (!DECIMAL.test(v.trim()) || !Number.isFinite(n) || n < min || (above && n === min))
    throw new UsageError(`${flag} ${v}: expected a ${above && min === 0 ? 'positive number' : `number ≥ ${min}`}`);
  return n;
}

/** `--crop 256`, `--crop 320x256` (WIDTHxHEIGHT, as image sizes are written) or `none`; stored [height, width]. */
function parseCrop(v: string): [number, number] | null {
  if (v === 'none') return null;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  const [w, h] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [0, 0];
  if (!m || w < 1 || h < 1) throw new UsageError(`--crop ${v}: expected SIZE, WIDTHxHEIGHT (positive integers) or none`);
  return [h, w];
}

/** `--gate-grids 160x120,80x60` (WIDTHxHEIGHT each): the local and global gate grids of a new network, stored [height, width]. */
function parseGateGrids(v: string): Pick<FusionConfig, 'localGate' | 'globalGate'> {
  const m = /^(\d+)x(\d+),(\d+)x(\d+)$/.exec(v);
  const sizes = m ? m.slice(1).map(Number) : [];
  if (!m || sizes.some((n) => n < 1)) throw new UsageError(`--gate-grids ${v}: expected LOCAL_WxH,GLOBAL_WxH, e.g. 160x120,80x60`);
  return { localGate: [sizes[1], sizes[0]], globalGate: [sizes[3], sizes[2]] };
}

/** `--milestones 600,900`: steps, each a positive integer. */
function parseMilestones(v: string): number[] {
  const steps = v.split(',');
  if (!steps.every((s) => INTEGER.test(s) && Number(s) >= 1 && Number.isSafeInteger(Number(s))))
    throw new UsageError(`--milestones ${v}: expected comma-separated steps (positive integers)`);
  return steps.map(Number);
}


function optionsFrom(a: TrainArgs): TrainOptions {
  if (!ATTENTION_MODES.includes(a.attention as AttentionMode)) throw new UsageError(`--attention ${a.attention}: expected one of ${ATTENTION_MODES.join(', ')}`);
  const steps = positiveInteger('--steps', a.steps);
  if (!INTEGER.test(a.seed) || Number(a.seed) > MAX_SEED) throw new UsageError(`--seed ${a.seed}: expected an integer from 0 to ${MAX_SEED}`);
  return {
    steps,
    batchSize: positiveInteger('--batch', a.batch),
    crop: parseCrop(a.crop),
    lr: number('--lr', a.lr, 0, true),
    weightDecay: number('--weight-decay', a.weightDecay, 0, false),
    clipNorm: number('--clip', a.clip, 0, true),
    milestones: a.milestones === undefined ? referenceMilestones(steps) : parseMilestones(a.milestones),
    gamma: number('--gamma', a.gamma, 0, true),
    seed: Number(a.seed),
    attention: a.attention as AttentionMode,
    foreground: oneOf('--foreground', a.foreground, ['attention', 'all'] as const) as ForegroundMode,
    schedule: oneOf('--schedule', a.schedule, ['step', 'cosine'] as const),
    warmup: nonNegativeInteger('--warmup', a.warmup),
    flip: !!a.flip,
  };
}

function oneOf<T extends string>(flag: string, v: string, choices: readonly T[]): T {
  if (!choices.includes(v as T)) throw new UsageError(`${flag} ${v}: expected one of ${choices.join(', ')}`);
  return v as T;
}

function nonNegativeInteger(flag: string, v: string): number {
  const n = Number(v);
  if (!INTEGER.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} ${v}: expected a non-negative integer`);
  return n;
}

/** The flags behind each setting a resumed run checks (commander's option names). */
const SETTING_OPTIONS: Record<RunSetting, string> = {
  steps: 'steps',
  batchSize: 'batch',
  crop: 'crop',
  lr: 'lr',
  weightDecay: 'weightDecay',
  clipNorm: 'clip',
  milestones: 'milestones',
  gamma: 'gamma',
  seed: 'seed',
  attention: 'attention',
  foreground: 'foreground',
  schedule: 'schedule',
  warmup: 'warmup',
  flip: 'flip',
  valFraction: 'valFraction',
  gateGrids: 'gateGrids',
  classes: 'classes',
};

/** Every flag checked, into the settings of a run; `given` holds the settings typed on the command line. */
export function settingsFrom(a: TrainArgs, given: (option: string) => boolean): RunSettings {
  const options = optionsFrom(a);
  const valFraction = number('--val-fraction', a.valFraction, 0, false);
  if (valFraction >= 1) throw new UsageError(`--val-fraction ${a.valFraction}: expected a number in [0, 1)`);
  let classes: string[] | null = null;
  if (a.classes !== undefined) {
    classes = a.classes.split(',').map((c) => c.trim()).filter(Boolean);
    if (!classes.length) throw new UsageError(`--classes ${a.classes}: expected comma-separated class names`);
  }
  return {
    data: a.data,
    split: a.split,
    out: a.out,
    options,
    valFraction,
    valEvery: a.valEvery === undefined ? null : positiveInteger('--val-every', a.valEvery),
    checkpointEvery: positiveInteger('--checkpoint-every', a.checkpointEvery),
    gateGrids: a.gateGrids === undefined ? null : parseGateGrids(a.gateGrids),
    classes,
    init: a.init,
    resume: !!a.resume,
    given: new Set((Object.keys(SETTING_OPTIONS) as RunSetting[]).filter((s) => given(SETTING_OPTIONS[s]))),
  };
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train MoE-Fusion on infrared/visible pairs (from scratch, --init WEIGHTS, or --resume)')
    .requiredOption('--data <dir...>', 'dataset folder(s): ir/+vi/ (or M3FD, LLVIP, MSRS layouts), optional labels')
    .option('--split <name>', 'split folder inside the dataset (train, test, …)')
    .requiredOption('--out <dir>', 'run folder: checkpoint, weights, log.jsonl, loss.png')
    .option('--steps <n>', 'optimisation steps (may be raised with --resume)', '1000')
    .option('--batch <n>', 'batch size', '4')
    .option('--crop <size>', 'random crop WIDTHxHEIGHT (or SIZE for a square), or none for whole images', '256')
    .option('--lr <x>', 'learning rate (Adam)', '1e-4')
    .option('--weight-decay <x>', 'Adam weight decay', '1e-4')
    .option('--clip <x>', 'gradient-norm clip', '35')
    .option('--milestones <steps>', 'comma-separated steps where lr is multiplied by --gamma (default: 2/3 and 11/12 of --steps)')
    .option('--gamma <x>', 'learning-rate factor at milestones', '0.1')
    .option('--seed <n>', 'seed of initialisation, crops, noise and the validation split', '0')
    .option('--attention <mode>', 'attention map: boxes (from labels, else 0.5), none (0.5), detector (detectors trained jointly on the labels), or saliency (the infrared image\'s brightness saliency, for data without boxes)', 'boxes')
    .option('--foreground <where>', 'where the pixel loss takes the max of the sources: attention (the attention map; boxes: the box mask, as the reference) or all', 'attention')
    .option('--schedule <kind>', 'learning rate: step (×--gamma at --milestones, the reference) or cosine (from --lr down to 0)', 'step')
    .option('--warmup <n>', 'steps of linear learning-rate warm-up', '0')
    .option('--flip', 'flip each crop left to right with probability ½')
    .option('--classes <names>', 'detector classes, comma-separated (default: M3FD\'s, or the labels found in the data)')
    .option('--val-fraction <x>', 'share of pairs held out for validation (seeded, stable)', '0.1')
    .option('--val-every <n>', 'also validate every <n> steps (validation always runs after each epoch and at the end)')
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--gate-grids <grids>', 'gate grids LOCAL_WxH,GLOBAL_WxH of a new network (default: the reference, 160x120,80x60)')
    .option('--init <weights>', 'start from these weights (and their configuration)')
    .option('--resume', 'continue the run in --out from its checkpoint, with its settings (options given again must match; --steps may be raised)')
    .action(async (opts: TrainArgs, cmd: Command) => {
      const settings = settingsFrom(opts, (o) => cmd.getOptionValueSource(o) === 'cli');
      checkOutputs(
        [{ flag: '--out', path: opts.out, kind: 'folder', files: RUN_FILES }],
        [...opts.data.map((path) => ({ flag: '--data', path })), opts.init && { flag: '--init', path: opts.init }],
      );
      await runTraining(settings, { line: (m) => console.log(m), progress: (total, label) => createProgress(total, label) });
    });
}
