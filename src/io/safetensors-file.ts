/** safetensors files in Node: read whole and parsed (safetensors.ts), written atomically (temp file + rename). */
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { forgetTemporary, OutputError, trackTemporary } from './atomic.ts';
import { systemReason } from './system-errors.ts';
import { encodeSafetensors, parseSafetensors, SafetensorsError, type SafetensorsFile, type TensorToWrite } from './safetensors.ts';

/** Reads every tensor of a safetensors file as float32, with the file's metadata. */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    if (statSync(path).isDirectory()) throw new Error('it is a folder, not a file');
    bytes = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot open (${(e as Error).message.replace(/^[A-Z]+: /, '')})`);
  }
  return parseSafetensors(bytes, path);
}

/**
 * Writes tensors (float32 data) stored as F32 (default) or F16, in the given key order, with string metadata.
 * The file appears complete or not at all: it is written to a temporary file next to `path`, then renamed.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  opts: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string> } = {},
): void {
  const parts = encodeSafetensors(path, tensors, opts);
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  trackTemporary(temp);
  try {
    const fd = openSync(temp, 'w');
    try {
      for (const part of parts) for (let done = 0; done < part.length; ) done += writeSync(fd, part, done, part.length - done);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw new OutputError(path, `cannot write the safetensors file (${systemReason(e)})`, e);
  } finally {
    forgetTemporary(temp);
  }
}
