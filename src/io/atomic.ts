/**
 * Writing outputs so that a crash, an error or Ctrl-C never leaves a half-written file under the final name, nor a
 * new folder with nothing in it: write to a temporary file in the same folder (same file system, so rename is
 * atomic), then rename; create an output's folder when its first file is written. The temporary files being
 * written and the folders created are recorded, so that cleanUpOutputs() can remove them when a command fails or
 * is interrupted.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, realpathSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { systemCode, systemReason } from './system-errors.ts';

/** An output path that cannot be used or written; the message names it and says why. */
export class OutputError extends Error {
  /** The system error code behind it (ENOSPC, EACCES, …), when there is one. */
  readonly code?: string;

  constructor(
    readonly path: string,
    problem: string,
    cause?: unknown,
  ) {
    super(`${path}: ${problem}`, cause === undefined ? undefined : { cause });
    this.name = 'OutputError';
    this.code = systemCode(cause);
  }
}

/** Temporary files and folders being written by this process. */
const temporaries = new Set<string>();
/** The outermost folders this process created for its outputs. */
const createdFolders = new Set<string>();
/** Set by cleanUpOutputs(true) (Ctrl-C): nothing more is written. */
let closed = false;

/** A hidden temporary name next to `path`, unique per process and call. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Records a temporary file or folder that cleanUpOutputs() removes unless it is forgotten first (renamed into place). */
export function trackTemporary(path: string): void {
  temporaries.add(path);
}

export function forgetTemporary(path: string): void {
  temporaries.delete(path);
}

function refuseWhenClosed(path: string): void {
  if (closed) throw new OutputError(path, 'not written: the command was interrupted');
}

/** Removes a temporary file if it is there (when its folder could not be made, the path itself may be invalid). */
async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true }).catch(() => {});
}

/** A write that failed, named by the final path (never the temporary one) with the reason in words. */
function writeError(path: string, e: unknown): OutputError {
  return e instanceof OutputError ? e : new OutputError(path, `cannot be written (${systemReason(e)})`, e);
}

/**
 * Writes data to path atomically, creating its folder if needed; on failure the temporary file is removed and an
 * OutputError naming `path` is thrown (its `code` is the system error's).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  refuseWhenClosed(path);
  const tmp = tempPathFor(path);
  trackTemporary(tmp);
  try {
    createFolder(dirname(resolve(path)));
    await writeFile(tmp, data);
    refuseWhenClosed(path);
    await rename(tmp, path);
  } catch (e) {
    await removeQuietly(tmp);
    throw writeError(path, e);
  } finally {
    forgetTemporary(tmp);
  }
}

/**
 * A group of outputs that appear together or not at all (as far as renames allow): write each to `path(final)`
 * (or with `write`), then `commit()` renames them all; `abort()` removes the temporary files.
 * Useful when a library writes a file itself (e.g. sharp's toFile) or when a checkpoint has several files.
 */
export interface AtomicOutputs {
  /** The temporary path to write instead of `finalPath` (its folder is created). */
  path(finalPath: string): string;
  write(finalPath: string, data: string | Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export function atomicOutputs(): AtomicOutputs {
  const pending = new Map<string, string>(); // final path → temporary path
  const tempFor = (finalPath: string) => {
    let tmp = pending.get(finalPath);
    if (!tmp) {
      refuseWhenClosed(finalPath);
      try {
        createFolder(dirname(resolve(finalPath)));
      } catch (e) {
        throw writeError(finalPath, e);
      }
      pending.set(finalPath, (tmp = tempPathFor(finalPath)));
      trackTemporary(tmp);
    }
    return tmp;
  };
  const abort = async () => {
    await Promise.all([...pending.values()].map(removeQuietly));
    for (const tmp of pending.values()) forgetTemporary(tmp);
    pending.clear();
  };
  return {
    path: tempFor,
    async write(finalPath, data) {
      try {
        await writeFile(tempFor(finalPath), data);
      } catch (e) {
        throw writeError(finalPath, e);
      }
    },
    async commit() {
      let current = '';
      try {
        for (const [finalPath, tmp] of pending) {
          current = finalPath;
          refuseWhenClosed(finalPath);
          await rename(tmp, finalPath);
          forgetTemporary(tmp);
        }
        pending.clear();
      } catch (e) {
        await abort();
        throw writeError(current, e);
      }
    },
    abort,
  };
}

/** The outermost folder of `dir` that does not exist yet (what creating `dir` creates), or null when it exists. */
function outermostMissing(dir: string): string | null {
  let d = resolve(dir);
  if (existsSync(d)) return null;
  while (!existsSync(dirname(d)) && dirname(d) !== d) d = dirname(d);
  return d;
}

/** Creates `dir` and its missing parents (system errors as they are), recording the outermost one it created. */
function createFolder(dir: string): void {
  const created = outermostMissing(dir);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    // mkdir says EEXIST when a file stands where a folder should: that is a path through a file.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw Object.assign(new Error(`${dir}: a part of the path is a file`), { code: 'ENOTDIR' });
    throw e;
  }
  if (created) createdFolders.add(created);
}

/**
 * Makes sure `dir` is a writable folder, creating it (and its parents) if needed; cleanUpOutputs() removes the
 * folders created here again while they hold no file. `what` names it in errors, e.g. the option it came from.
 */
export function ensureWritableDir(dir: string, what = 'output folder'): void {
  const label = `${what} ${dir}`;
  refuseWhenClosed(label);
  try {
    createFolder(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new OutputError(label, 'exists and is not a folder', e);
    throw new OutputError(label, `cannot create the folder (${systemReason(e)})`, e);
  }
  if (!statSync(dir).isDirectory()) throw new OutputError(label, 'exists and is not a folder');
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new OutputError(label, 'the folder is not writable', e);
  }
}

/**
 * Checks, without leaving anything behind, that `dir` is a writable folder or could be created as one: the nearest
 * existing ancestor must be a folder in which a file can be created (tried with a hidden file, removed at once:
 * permissions alone do not tell, e.g. in /proc or on a read-only mount). `what` names it in errors.
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
  const where = probe === resolve(dir) ? 'the folder' : probe;
  try {
    accessSync(probe, constants.W_OK);
    const file = tempPathFor(join(probe, 'write-check'));
    closeSync(openSync(file, 'wx'));
    unlinkSync(file);
  } catch (e) {
    throw new OutputError(label, `${where} is not writable (${systemReason(e)})`, e);
  }
}

/** The absolute path with every link of its existing part resolved (the rest, not created yet, as written). */
export function canonical(path: string): string {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail);
    } catch {
      const parent = dirname(head);
      if (parent === head) return resolve(path);
      tail.unshift(basename(head));
      head = parent;
    }
  }
}

/** Whether a folder holds no file at any depth (only empty folders). */
function holdsNoFile(dir: string): boolean {
  try {
    return readdirSync(dir, { withFileTypes: true }).every((e) => e.isDirectory() && holdsNoFile(join(dir, e.name)));
  } catch {
    return false;
  }
}

/** Removes a folder tree that holds no file, deepest first (a file that appears meanwhile stops it). */
function removeEmptyTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyTree(join(dir, e.name));
  rmdirSync(dir);
}

/**
 * Removes the temporary files still being written and the folders this process created that hold no file, and
 * forgets them (the CLI calls it when a command ends, and on Ctrl-C). Synchronous, so that a signal handler can
 * run it. `close`: refuse every later write (the process is about to exit).
 */
export function cleanUpOutputs(close = false): void {
  if (close) closed = true;
  for (const tmp of temporaries)
    try {
      rmSync(tmp, { recursive: true, force: true });
    } catch {
      // Its folder is gone or was never made.
    }
  temporaries.clear();
  for (const dir of createdFolders)
    try {
      if (existsSync(dir) && holdsNoFile(dir)) removeEmptyTree(dir);
    } catch {
      // Something appeared in it meanwhile: it stays.
    }
  createdFolders.clear();
}

/** Starts a command with a clean record (the CLI runs several commands in one process in its tests). */
export function resetOutputs(): void {
  temporaries.clear();
  createdFolders.clear();
  closed = false;
}
