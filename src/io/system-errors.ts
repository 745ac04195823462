/** System errors (ENOENT, ENOSPC, …) in words, for one-line messages, and which of them are exhausted resources. */

const MEANINGS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'already exists',
  ENOMEM: 'out of memory',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EXDEV: 'not on the same file system',
};

/** Exhausted resources (disk, memory, file descriptors): exit 3, not bad input. */
const RESOURCE_CODES = new Set(['ENOSPC', 'EDQUOT', 'ENOMEM', 'EMFILE', 'ENFILE']);

/** The system error code of `e`, or of the error that caused it (wrapped errors keep theirs as `cause`). */
export function systemCode(e: unknown): string | undefined {
  for (let x = e, depth = 0; x instanceof Error && depth < 4; x = x.cause, depth++) {
    const code = (x as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/** What a system error code means in words, when it is one this file knows. */
export function meaningOf(code: string | undefined): string | undefined {
  return code ? MEANINGS[code] : undefined;
}

export function isResourceExhausted(e: unknown): boolean {
  const code = systemCode(e);
  return code !== undefined && RESOURCE_CODES.has(code);
}

/**
 * Why an operation failed, in words and without the path Node puts in its messages (which may be a temporary
 * file's): "no space left on the device", else Node's message without its path.
 */
export function systemReason(e: unknown): string {
  const meaning = meaningOf(systemCode(e));
  if (meaning) return meaning;
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/^E[A-Z]+: /, '').replace(/, \w+ '[^']*'(?: -> '[^']*')?$/, '');
}
