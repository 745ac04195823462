/**
 * `moefusion train --data DIR --out RUN_DIR [options]`: the flags, checked up front (each bad value is named with
 * its flag), become the settings of a run (src/train/run.ts), which trains the fusion network from scratch, from a
 * weights file (--init) or from the run's own checkpoint (--resume).
 */
import { Command, Option } from 'commander';
import type { FusionConfig } from '../model/config.ts';
import {
  formatOption, OptionError, parseOption, TRAIN_OPTION_KEYS, TRAIN_OPTIONS, withDefaults,
  type OptionSpec, type TrainOptionKey, type TrainOptions,
} from '../train/options.ts';
import { runTraining, RUN_FILES, type RunSetting, type RunSettings } from '../train/run.ts';
import { UsageError } from './errors.ts';
import { checkOutputs } from './outputs.ts';
import { createProgress } from './progress.ts';

/** What commander hands the action: the training options parsed by their schema entries, the other flags as text. */
type TrainArgs = Record<string, unknown> & {
  data: string[];
  split?: string;
  out: string;
  valFraction: string;
  valEvery?: string;
  checkpointEvery: string;
  gateGrids?: string;
  classes?: string;
  init?: string;
  resume?: boolean;
  snapshots?: boolean;
};

const INTEGER = /^\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function positiveInteger(flag: string, v: string): number {
  const n = Number(v);
  if (!INTEGER.test(v) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} ${v}: expected a positive integer`);
  return n;
}

/** `--gate-grids 160x120,80x60` (WIDTHxHEIGHT each): the local and global gate grids of a new network, stored [height, width]. */
function parseGateGrids(v: string): Pick<FusionConfig, 'localGate' | 'globalGate'> {
  const m = /^(\d+)x(\d+),(\d+)x(\d+)$/.exec(v);
  const sizes = m ? m.slice(1).map(Number) : [];
  if (!m || sizes.some((n) => n < 1)) throw new UsageError(`--gate-grids ${v}: expected LOCAL_WxH,GLOBAL_WxH, e.g. 160x120,80x60`);
  return { localGate: [sizes[1], sizes[0]], globalGate: [sizes[3], sizes[2]] };
}

/** The commander option of a training option's schema entry; a bad value is a usage error naming the flag. */
function schemaOption(key: TrainOptionKey): Option {
  const spec = TRAIN_OPTIONS[key] as OptionSpec<unknown>;
  const option = new Option(spec.arg ? `${spec.flag} ${spec.arg}` : spec.flag, spec.help);
  if (!spec.arg) return option;
  option.argParser((text: string) => {
    try {
      return parseOption(key, text);
    } catch (e) {
      throw e instanceof OptionError ? new UsageError(e.message) : e;
    }
  });
  if (spec.default !== undefined) option.default(spec.default, formatOption(key, spec.default as never));
  return option;
}

/** Commander's name of each training option's value (`--batch` → batch). */
const ATTRIBUTE = Object.fromEntries(TRAIN_OPTION_KEYS.map((k) => [k, schemaOption(k).attributeName()])) as Record<TrainOptionKey, string>;

/** The commander names of the other settings a resumed run checks. */
const OTHER_SETTINGS = { valFraction: 'valFraction', gateGrids: 'gateGrids', classes: 'classes' } as const;

/** Every flag checked, into the settings of a run; `given` holds the settings typed on the command line. */
export function settingsFrom(a: TrainArgs, given: (option: string) => boolean): RunSettings {
  const options = withDefaults(Object.fromEntries(TRAIN_OPTION_KEYS.map((k) => [k, a[ATTRIBUTE[k]] ?? undefined])) as Partial<TrainOptions>);
  const valFraction = Number(a.valFraction);
  if (!DECIMAL.test(a.valFraction.trim()) || !(valFraction >= 0)) throw new UsageError(`--val-fraction ${a.valFraction}: expected a number ≥ 0`);
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
    snapshots: !!a.snapshots,
    given: new Set<RunSetting>([
      ...TRAIN_OPTION_KEYS.filter((k) => given(ATTRIBUTE[k])),
      ...(Object.keys(OTHER_SETTINGS) as Array<keyof typeof OTHER_SETTINGS>).filter((k) => given(OTHER_SETTINGS[k])),
    ]),
  };
}

export function trainCommand(): Command {
  const command = new Command('train')
    .description('train MoE-Fusion on infrared/visible pairs (from scratch, --init WEIGHTS, or --resume)')
    .requiredOption('--data <dir...>', 'dataset folder(s): ir/+vi/ (or M3FD, LLVIP, MSRS layouts), optional labels')
    .option('--split <name>', 'split folder inside the dataset (train, test, …)')
    .requiredOption('--out <dir>', 'run folder: checkpoint, weights, log.jsonl, loss.png');
  for (const key of TRAIN_OPTION_KEYS) command.addOption(schemaOption(key));
  return command
    .option('--classes <names>', 'detector classes, comma-separated (default: M3FD\'s, or the labels found in the data)')
    .option('--val-fraction <x>', 'share of pairs held out for validation (seeded, stable)', '0.1')
    .option('--val-every <n>', 'validate every <n> steps instead of after each epoch (and always at the end)')
    .option('--checkpoint-every <n>', 'steps between checkpoints', '50')
    .option('--gate-grids <grids>', 'gate grids LOCAL_WxH,GLOBAL_WxH of a new network (default: the reference, 160x120,80x60)')
    .option('--init <weights>', 'start from these weights (and their configuration)')
    .option('--snapshots', 'also keep the weights of every validated step as weights-step<N>.safetensors (pick the best validated ones later)')
    .option('--resume', 'continue the run in --out from its checkpoint, with its settings (options given again must match; --steps may be raised)')
    .action(async (opts: TrainArgs, cmd: Command) => {
      const settings = settingsFrom(opts, (o) => cmd.getOptionValueSource(o) === 'cli');
      checkOutputs(
        [{ flag: '--out', path: opts.out, kind: 'folder', files: RUN_FILES }],
        [...opts.data.map((path) => ({ flag: '--data', path })), opts.init && { flag: '--init', path: opts.init }],
      );
      await runTraining(settings, { line: (m) => console.log(m), progress: (total, label, start) => createProgress(total, label, { start }) });
    });
}
