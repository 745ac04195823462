/**
 * Every option of a training run, declared once: its flag, help, default, how the command line's text becomes its
 * value (and the message when it cannot), how it is written in messages, how a checkpoint's stored value is checked,
 * the value of checkpoints written before it existed, and whether a resumed run may change it. The command line
 * (cli/train.ts), `TrainOptions`, the checkpoint's checks (checkpoint.ts) and the resume rules (run.ts) all derive
 * from this table: a new persisted option is one entry here plus its use.
 */
import { TrainingError } from './errors.ts';

/**
 * Where Att, the mixtures' foreground map, comes from in training: the box mask, 0.5 everywhere, the detectors
 * (trained jointly), or the infrared saliency (model/saliency.ts) for data without boxes.
 */
export const ATTENTION_MODES = ['boxes', 'none', 'detector', 'saliency'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];

/**
 * What the pixel loss pulls the fused image towards: 'reference', the reference's max(ir, vis) where Att (boxes or
 * saliency) is and their mean elsewhere; 'max', max(ir, vis) everywhere; 'multiscale', the training-free multi-scale
 * fusion of the pair (model/classic-fusion.ts), sharper and richer in contrast than either.
 */
export const TARGETS = ['reference', 'max', 'multiscale'] as const;
export type Target = (typeof TARGETS)[number];

export const SCHEDULES = ['step', 'cosine'] as const;

/** A bad value of an option, named with its flag; the command line reports it as a usage error. */
export class OptionError extends TrainingError {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export interface OptionSpec<T> {
  flag: string;
  /** Placeholder of the value in the help; absent for a switch (true when given). */
  arg?: string;
  help: string;
  /** The value when the option is not given; absent when `derive` computes it from the other options. */
  default?: T;
  /** The command line's text to a value; throws the reason (what was expected), which gets the flag and text prefixed. */
  parse?: (text: string) => T;
  format?: (v: T) => string;
  /** Whether a value read from a checkpoint is well-formed, and what it should be otherwise. */
  check: (v: unknown) => string | null;
  /** The value of checkpoints written before the option existed; absent: every checkpoint holds it. */
  legacy?: T;
  /** A resumed run may raise it (--steps); every other option must equal the checkpoint's when given again. */
  mayRaise?: boolean;
}

const option = <T>(s: OptionSpec<T>): OptionSpec<T> => s;

const INTEGER = /^\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** Largest --seed: seed + 1 seeds the trainer's 32-bit generator. */
const MAX_SEED = 2 ** 32 - 2;

const isInt = (v: unknown, min = 0): v is number => Number.isInteger(v) && (v as number) >= min;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isSize = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every((x) => isInt(x, 1));

function positiveInteger(v: string): number {
  const n = Number(v);
  if (!INTEGER.test(v) || !Number.isSafeInteger(n) || n < 1) throw 'expected a positive integer';
  return n;
}

function nonNegativeInteger(v: string): number {
  const n = Number(v);
  if (!INTEGER.test(v) || !Number.isSafeInteger(n)) throw 'expected a non-negative integer';
  return n;
}

/** A finite number in decimal notation ≥ min (> min when `above`). */
function decimal(min: number, above: boolean): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!DECIMAL.test(v.trim()) || !Number.isFinite(n) || n < min || (above && n === min))
      throw `expected a ${above && min === 0 ? 'positive number' : `number ≥ ${min}`}`;
    return n;
  };
}

function oneOf<T extends string>(choices: readonly T[]): Pick<OptionSpec<T>, 'parse' | 'check'> {
  const expected = `expected one of ${choices.join(', ')}`;
  return {
    parse: (v) => {
      if (!choices.includes(v as T)) throw expected;
      return v as T;
    },
    check: (v) => (choices.includes(v as T) ? null : `is not one of ${choices.join(', ')}`),
  };
}

/** `256` (a square) or `320x256` (WIDTHxHEIGHT, as image sizes are written), stored [height, width]. */
function size(v: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  const [w, h] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [0, 0];
  if (!m || w < 1 || h < 1) throw 'expected SIZE, WIDTHxHEIGHT (positive integers) or none';
  return [h, w];
}

const orNone = (parse: (v: string) => [number, number]) => (v: string) => (v === 'none' ? null : parse(v));

/** `W×H` of a size stored as [height, width]. */
export const formatSize = (s: [number, number]): string => `${s[1]}x${s[0]}`;
const formatSizeOrNone = (s: [number, number] | null) => (s ? formatSize(s) : 'none');
const checkSizeOrNone = (v: unknown) => (v === null || isSize(v) ? null : 'is neither null nor [height, width]');

export const TRAIN_OPTIONS = {
  steps: option<number>({ flag: '--steps', arg: '<n>', help: 'optimisation steps (may be raised with --resume)', default: 1000, parse: positiveInteger, check: (v) => (isInt(v, 1) ? null : 'is not a positive integer'), mayRaise: true }),
  batchSize: option<number>({ flag: '--batch', arg: '<n>', help: 'batch size', default: 4, parse: positiveInteger, check: (v) => (isInt(v, 1) ? null : 'is not a positive integer') }),
  crop: option<[number, number] | null>({
    flag: '--crop', arg: '<size>', help: 'random crop WIDTHxHEIGHT (or SIZE for a square), or none for whole images',
    default: [256, 256], parse: orNone(size), format: formatSizeOrNone, check: checkSizeOrNone,
  }),
  cropScale: option<[number, number]>({
    flag: '--crop-scale', arg: '<min,max>',
    help: 'each crop covers crop × s pixels of its image, s drawn from [min, max] (log-uniform) and resized down to the crop: above 1 the gates see a share of the frame closer to what they see at test time',
    default: [1, 1], legacy: [1, 1],
    parse: (v) => {
      const parts = v.split(',').map((p) => Number(p));
      const [lo, hi] = parts.length === 1 ? [parts[0], parts[0]] : parts;
      if (parts.length > 2 || !v.split(',').every((p) => DECIMAL.test(p)) || !(lo >= 1) || !(hi >= lo) || !Number.isFinite(hi)) throw 'expected MIN,MAX (or one scale) with 1 ≤ MIN ≤ MAX';
      return [lo, hi];
    },
    format: ([lo, hi]) => (lo === hi ? String(lo) : `${lo},${hi}`),
    check: (v) => (Array.isArray(v) && v.length === 2 && isNum(v[0]) && isNum(v[1]) && v[0] >= 1 && v[1] >= v[0] ? null : 'is not [min, max] with 1 ≤ min ≤ max'),
  }),
  lr: option<number>({ flag: '--lr', arg: '<x>', help: 'learning rate (Adam)', default: 1e-4, parse: decimal(0, true), check: (v) => (isNum(v) ? null : 'is not a number') }),
  weightDecay: option<number>({ flag: '--weight-decay', arg: '<x>', help: 'Adam weight decay', default: 1e-4, parse: decimal(0, false), check: (v) => (isNum(v) ? null : 'is not a number') }),
  clipNorm: option<number>({ flag: '--clip', arg: '<x>', help: 'gradient-norm clip', default: 35, parse: decimal(0, true), check: (v) => (isNum(v) ? null : 'is not a number') }),
  milestones: option<number[]>({
    flag: '--milestones', arg: '<steps>', help: 'comma-separated steps where lr is multiplied by --gamma (default: 2/3 and 11/12 of --steps)',
    parse: (v) => {
      const steps = v.split(',');
      if (!steps.every((s) => INTEGER.test(s) && Number(s) >= 1 && Number.isSafeInteger(Number(s)))) throw 'expected comma-separated steps (positive integers)';
      return steps.map(Number);
    },
    format: (v) => v.join(',') || '(none)',
    check: (v) => (Array.isArray(v) && v.every((s) => isInt(s)) ? null : 'is not a list of steps'),
  }),
  gamma: option<number>({ flag: '--gamma', arg: '<x>', help: 'learning-rate factor at milestones', default: 0.1, parse: decimal(0, true), check: (v) => (isNum(v) ? null : 'is not a number') }),
  seed: option<number>({
    flag: '--seed', arg: '<n>', help: 'seed of initialisation, crops, noise and the validation split', default: 0,
    parse: (v) => {
      if (!INTEGER.test(v) || Number(v) > MAX_SEED) throw `expected an integer from 0 to ${MAX_SEED}`;
      return Number(v);
    },
    check: (v) => (isInt(v) ? null : 'is not a non-negative integer'),
  }),
  attention: option<AttentionMode>({
    flag: '--attention', arg: '<mode>', default: 'boxes', ...oneOf(ATTENTION_MODES),
    help: "attention map: boxes (from labels, else 0.5), none (0.5), detector (detectors trained jointly on the labels), or saliency (the infrared image's brightness saliency, for data without boxes)",
  }),
  target: option<Target>({
    flag: '--target', arg: '<target>', default: 'reference', legacy: 'reference', ...oneOf(TARGETS),
    help: "the pixel loss's target: reference (max(ir, vis) where the attention is, their mean elsewhere, as the reference), max (max(ir, vis) everywhere) or multiscale (the training-free multi-scale fusion of the pair)",
  }),
  detailGain: option<number>({
    flag: '--detail-gain', arg: '<x>', default: 1, legacy: 1, parse: decimal(0, true), check: (v) => (isNum(v) && v > 0 ? null : 'is not a positive number'),
    help: "--target multiscale: factor on the target's detail layers (1: the sources' own contrast; above 1 a sharper target)",
  }),
  gradGain: option<number>({
    flag: '--grad-gain', arg: '<x>', default: 1, legacy: 1, parse: decimal(0, true), check: (v) => (isNum(v) && v > 0 ? null : 'is not a positive number'),
    help: "factor on the gradient loss's target max(|∇vis|, |∇ir|) (1: the reference; with --detail-gain, edges as strong as the sharper target's)",
  }),
  pixelWeight: option<number>({
    flag: '--pixel-weight', arg: '<x>', default: 1, legacy: 1, parse: decimal(0, true), check: (v) => (isNum(v) && v > 0 ? null : 'is not a positive number'),
    help: "weight of the pixel loss beside the gradient loss's 10 (1: the reference; above 1 the fused image's tones follow the target more closely)",
  }),
  schedule: option<(typeof SCHEDULES)[number]>({
    flag: '--schedule', arg: '<kind>', default: 'step', legacy: 'step', ...oneOf(SCHEDULES),
    help: 'learning rate: step (×--gamma at --milestones, the reference) or cosine (from --lr down to 0)',
  }),
  warmup: option<number>({ flag: '--warmup', arg: '<n>', help: 'steps of linear learning-rate warm-up', default: 0, legacy: 0, parse: nonNegativeInteger, check: (v) => (isInt(v) ? null : 'is not a non-negative integer') }),
  flip: option<boolean>({ flag: '--flip', help: 'flip each crop left to right with probability ½', default: false, legacy: false, check: (v) => (typeof v === 'boolean' ? null : 'is not true or false') }),
  valSize: option<[number, number] | null>({
    flag: '--val-size', arg: '<size>',
    help: 'validation fuses each held-out frame whole, downscaled to fit WIDTHxHEIGHT (routing as at test time); none: its centre crop of at most 256×256',
    default: [240, 320], legacy: null, parse: orNone(size), format: formatSizeOrNone, check: checkSizeOrNone,
  }),
};

type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
export type TrainOptions = { -readonly [K in keyof typeof TRAIN_OPTIONS]: ValueOf<(typeof TRAIN_OPTIONS)[K]> };
export type TrainOptionKey = keyof TrainOptions;
export const TRAIN_OPTION_KEYS = Object.keys(TRAIN_OPTIONS) as TrainOptionKey[];

function specOf<K extends TrainOptionKey>(key: K): OptionSpec<TrainOptions[K]> {
  return TRAIN_OPTIONS[key] as unknown as OptionSpec<TrainOptions[K]>;
}

/** The value of `key` from the command line's text; a bad one throws an OptionError naming the flag. */
export function parseOption<K extends TrainOptionKey>(key: K, text: string): TrainOptions[K] {
  const spec = specOf(key);
  try {
    return spec.parse ? spec.parse(text) : (text as TrainOptions[K]);
  } catch (reason) {
    if (typeof reason !== 'string') throw reason;
    throw new OptionError(`${spec.flag} ${text}: ${reason}`);
  }
}

export function formatOption<K extends TrainOptionKey>(key: K, v: TrainOptions[K]): string {
  const spec = specOf(key);
  return spec.format ? spec.format(v) : String(v);
}

/** The reference's learning-rate milestones for a run of `steps` steps: 2/3 and 11/12 of it. */
export function referenceMilestones(steps: number): number[] {
  return [Math.round((steps * 48) / 72), Math.round((steps * 66) / 72)];
}

/** Options from the given values, the others at their defaults (milestones: the reference's for the steps). */
export function withDefaults(given: Partial<TrainOptions>): TrainOptions {
  const o = Object.fromEntries(TRAIN_OPTION_KEYS.map((k) => [k, given[k] ?? specOf(k).default])) as TrainOptions;
  o.milestones ??= referenceMilestones(o.steps);
  return o;
}

/** The reference's settings (docs/moe-fusion.md §6), for a run of `steps` steps. */
export function referenceOptions(steps: number): TrainOptions {
  return withDefaults({ steps, crop: null, valSize: null });
}

/**
 * A checkpoint's stored options, completed and checked: options it predates take their `legacy` values (the old
 * `foreground: all` is today's target max); the first malformed one is reported as `options.<key> <why>`.
 */
export function storedOptions(stored: Record<string, unknown>): { options: TrainOptions } | { problem: string } {
  const o: Record<string, unknown> = { ...stored };
  if (o.target === undefined && o.foreground !== undefined) o.target = o.foreground === 'all' ? 'max' : 'reference';
  delete o.foreground;
  for (const key of TRAIN_OPTION_KEYS) {
    const spec = specOf(key);
    if (o[key] === undefined && spec.legacy !== undefined) o[key] = spec.legacy;
    const problem = spec.check(o[key]);
    if (problem) return { problem: `options.${key} ${problem}` };
  }
  return { options: o as TrainOptions };
}
