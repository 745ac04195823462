/**
 * Writing outputs so that a crash or an error never leaves a half-written file under the final name:
 * write to a temporary file in the same folder (same file system, so rename is atomic), then rename.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** An output path that cannot be used; the message names it and says why. */
export class OutputError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'OutputError';
  }
}

/** A hidden temporary name next to `path`, unique per process and call. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes data to path atomically; on failure the temporary file is removed and the error rethrown. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A group of outputs that appear together or not at all (as far as renames allow): write each to `path(final)`
 * (or with `write`), then `commit()` renames them all; `abort()` removes the temporary files.
 * Useful when a library writes a file itself (e.g. sharp's toFile) or when a checkpoint has several files.
 */
export interface AtomicOutputs {
  /** The temporary path to write instead of `finalPath`. */
  path(finalPath: string): string;
  write(finalPath: string, data: string | Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export function atomicOutputs(): AtomicOutputs {
  const pending = new Map<string, string>(); // final path → temporary path
  const tempFor = (finalPath: string) => {
    let tmp = pending.get(finalPath);
    if (!tmp) pending.set(finalPath, (tmp = tempPathFor(finalPath)));
    return tmp;
  };
  const abort = async () => {
    await Promise.all([...pending.values()].map((tmp) => rm(tmp, { force: true })));
    pending.clear();
  };
  return {
    path: tempFor,
    async write(finalPath, data) {
      await writeFile(tempFor(finalPath), data);
    },
    async commit() {
      try {
        for (const [finalPath, tmp] of pending) await rename(tmp, finalPath);
        pending.clear();
      } catch (e) {
        await abort();
        throw e;
      }
    },
    abort,
  };
}

/**
 * Makes sure `dir` is a writable folder, creating it (and its parents) if needed.
 * `what` names it in errors, e.g. the option it came from ("--out").
 */
export function ensureWritableDir(dir: string, what = 'output folder'): void {
  const label = `${what} ${dir}`;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new OutputError(label, 'exists and is not a folder');
    throw new OutputError(label, `cannot create the folder (${code ?? (e as Error).message})`);
  }
  if (!statSync(dir).isDirectory()) throw new OutputError(label, 'exists and is not a folder');
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new OutputError(label, 'the folder is not writable');
  }
}

/**
 * Checks, without creating anything, that `dir` is a writable folder or could be created as one: the nearest
 * existing ancestor must be a writable folder. `what` names it in errors.
 */
export function checkWritableDir(dir: string, what = 'output folder'): void {
  const label = `${what} ${dir}`;
  let probe = resolve(dir);
  while (!existsSync(probe)) {
    const parent = dirname(probe);
    if (parent === probe) break;
    probe = parent;
  }
  if (!statSync(probe).isDirectory()) throw new OutputError(label, probe === resolve(dir) ? 'exists and is not a folder' : `${probe} is a file, not a folder`);
  try {
    accessSync(probe, constants.W_OK);
  } catch {
    throw new OutputError(label, `${probe === resolve(dir) ? 'the folder' : probe} is not writable`);
  }
}

/** Whether two paths name the same file or folder, also through links (false when either does not exist). */
export function isSamePath(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
