/**
 * Errors the user can act on, and the top-level handler that turns any error into one line
 * `moefusion: <message>` on stderr and a non-zero exit code. Set MOEFUSION_DEBUG=1 to also print the stack.
 */
import { DeviceLostError, GpuError, LimitError, NoAdapterError } from '../runtime/errors.ts';
import { ImageError, ImageTooLargeError } from '../io/image.ts';
import { DatasetError } from '../io/dataset.ts';
import { BoxFormatError } from '../io/boxes.ts';
import { OutputError } from '../io/atomic.ts';
import { SafetensorsError } from '../io/safetensors.ts';
import { WeightsError } from '../model/state-dict.ts';
import { ConfigError } from '../model/config.ts';
import { InputError } from '../io/pixels.ts';
import { EvaluationError } from '../metrics/evaluate.ts';
import { TrainingError } from '../train/errors.ts';
import { isResourceExhausted, meaningOf, systemCode } from '../io/system-errors.ts';

/** A problem with the user's input (a file, its contents, a value that cannot be used): shown as is, without a stack. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A malformed command line (an option's syntax, a missing or unknown option). */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_OK = 0;
export const EXIT_USER = 1;
export const EXIT_USAGE = 2;
export const EXIT_GPU = 3;
export const EXIT_INTERNAL = 70;
/** 128 + the signal's number, as shells report a process that a signal ended. */
export const EXIT_INTERRUPTED = 130;
export const EXIT_TERMINATED = 143;

/** The exit codes and what they mean: the table in docs/cli.md is this one (test/bad-input.test.ts compares them). */
export const EXIT_CODES: ReadonlyArray<readonly [number, string]> = [
  [EXIT_OK, 'done'],
  [EXIT_USER, 'bad input: a file, folder or value that cannot be used (named in the message); an output that is an input; `fuse` on folders: some pairs failed (listed; the others were fused); `selftest`: a check failed'],
  [EXIT_USAGE, 'usage: the command line itself (an unknown option, a missing or malformed value, a value out of range)'],
  [EXIT_GPU, 'resources: no GPU adapter (the message says what to install), a GPU error, an image too large (for the adapter, or over 268 megapixels), out of memory, no space left on the disk'],
  [EXIT_INTERNAL, 'internal error (a bug; `MOEFUSION_DEBUG=1` prints the stack)'],
  [EXIT_INTERRUPTED, 'interrupted (Ctrl-C; 143 for SIGTERM): temporary files and new empty folders are removed'],
];

export interface DescribedError {
  message: string;
  exitCode: number;
}

const INPUT_ERRORS = [UserError, ImageError, DatasetError, BoxFormatError, OutputError, SafetensorsError, WeightsError, ConfigError, InputError, EvaluationError, TrainingError];

/** The one line to show for an error, and the exit code. */
export function describeError(e: unknown): DescribedError {
  if (e instanceof UsageError) return { message: e.message, exitCode: EXIT_USAGE };
  // Our own errors keep the system error behind them: a full disk is a resource, whatever was being written.
  const ours = INPUT_ERRORS.some((cls) => e instanceof cls);
  if (ours && (e instanceof ImageTooLargeError || isResourceExhausted(e))) return { message: (e as Error).message, exitCode: EXIT_GPU };
  if (ours) return { message: (e as Error).message, exitCode: EXIT_USER };
  if (e instanceof NoAdapterError) return { message: e.message, exitCode: EXIT_GPU };
  if (e instanceof DeviceLostError) return { message: `${e.message}. Run again; if it repeats, try a smaller input or \`moefusion info\``, exitCode: EXIT_GPU };
  if (e instanceof LimitError) return { message: `too large for this GPU: ${e.message}`, exitCode: EXIT_GPU };
  if (e instanceof GpuError) return { message: `GPU error: ${e.message}`, exitCode: EXIT_GPU };
  const sys = e as NodeJS.ErrnoException;
  const meaning = meaningOf(systemCode(e));
  if (sys instanceof Error && meaning) return { message: `${sys.path ?? sys.syscall ?? 'file'}: ${meaning}`, exitCode: isResourceExhausted(e) ? EXIT_GPU : EXIT_USER };
  if (e instanceof RangeError && /allocation failed|invalid (typed )?array length|out of memory/i.test(e.message))
    return { message: `out of memory: ${e.message}`, exitCode: EXIT_GPU };
  const message = e instanceof Error ? e.message : String(e);
  return { message: `internal error: ${message} (please report it; MOEFUSION_DEBUG=1 shows the stack)`, exitCode: EXIT_INTERNAL };
}

/** Prints `moefusion: <message>` and sets the exit code. The caller returns; nothing else is printed. */
export function reportFatal(e: unknown): number {
  const { message, exitCode } = describeError(e);
  // Driver messages can span lines (Dawn lists adapters): keep the report on one line.
  process.stderr.write(`moefusion: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (process.env.MOEFUSION_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = exitCode;
  return exitCode;
}
