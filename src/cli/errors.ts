/**
 * Errors the user can act on, and the top-level handler that turns any error into one line
 * `moefusion: <message>` on stderr and a non-zero exit code. Set MOEFUSION_DEBUG=1 to also print the stack.
 */
import { DeviceLostError, GpuError, LimitError, NoAdapterError } from '../runtime/errors.ts';
import { ImageError } from '../io/image.ts';
import { DatasetError } from '../io/dataset.ts';
import { BoxFormatError } from '../io/boxes.ts';
import { OutputError } from '../io/atomic.ts';
import { SafetensorsError } from '../io/safetensors.ts';
import { WeightsError } from '../model/weights.ts';
import { ConfigError } from '../model/config.ts';
import { InputError } from '../io/pixels.ts';
import { EvaluationError } from '../metrics/evaluate.ts';
import { TrainingError } from '../train/errors.ts';

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

/**
 * Exit codes (README): 0 done, 1 bad input (a file or value that cannot be used), 2 usage (the command line
 * itself), 3 resources (no GPU adapter, GPU errors, too large for the adapter, out of memory), 70 internal error.
 */
export const EXIT_USER = 1;
export const EXIT_USAGE = 2;
export const EXIT_GPU = 3;
export const EXIT_INTERNAL = 70;

export interface DescribedError {
  message: string;
  exitCode: number;
}

const INPUT_ERRORS = [UserError, ImageError, DatasetError, BoxFormatError, OutputError, SafetensorsError, WeightsError, ConfigError, InputError, EvaluationError, TrainingError];

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'already exists',
  ENOMEM: 'out of memory',
  EMFILE: 'too many open files',
};
/** System errors of exhausted resources (exit 3), not of bad input. */
const RESOURCE_CODES = new Set(['ENOSPC', 'ENOMEM', 'EMFILE']);

/** The one line to show for an error, and the exit code. */
export function describeError(e: unknown): DescribedError {
  if (e instanceof UsageError) return { message: e.message, exitCode: EXIT_USAGE };
  if (INPUT_ERRORS.some((cls) => e instanceof cls)) return { message: (e as Error).message, exitCode: EXIT_USER };
  if (e instanceof NoAdapterError) return { message: e.message, exitCode: EXIT_GPU };
  if (e instanceof DeviceLostError) return { message: `${e.message}. Run again; if it repeats, try a smaller input or \`moefusion info\``, exitCode: EXIT_GPU };
  if (e instanceof LimitError) return { message: `too large for this GPU: ${e.message}`, exitCode: EXIT_GPU };
  if (e instanceof GpuError) return { message: `GPU error: ${e.message}`, exitCode: EXIT_GPU };
  const sys = e as NodeJS.ErrnoException;
  if (sys instanceof Error && sys.code && SYSTEM_ERRORS[sys.code])
    return { message: `${sys.path ?? sys.syscall ?? 'file'}: ${SYSTEM_ERRORS[sys.code]}`, exitCode: RESOURCE_CODES.has(sys.code) ? EXIT_GPU : EXIT_USER };
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
