/**
 * The rule every command that writes follows, checked before any work: no output is an input (a file given as an
 * input, or a file already in a folder given as one), no two outputs are one file or folder, and each output's
 * folder is writable or can be created. Messages name the options involved.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { canonical, checkWritableDir } from '../io/atomic.ts';
import { UserError } from './errors.ts';

/** A path and the option that gave it. */
export interface Named {
  flag: string;
  path: string;
}

/** An output file, or an output folder with the names of the files the command will write into it (when known). */
export type Output = (Named & { kind: 'file' }) | (Named & { kind: 'folder'; files?: readonly string[] });

type Maybe<T> = T | null | undefined | false | '';

const isFolder = (path: string) => existsSync(path) && statSync(path).isDirectory();

/** Refuses outputs that would overwrite an input or each other, and output folders that cannot be written. */
export function checkOutputs(outputs: ReadonlyArray<Maybe<Output>>, inputs: ReadonlyArray<Maybe<Named>>): void {
  const outs = outputs.filter((o): o is Output => !!o);
  // Inputs by canonical path (links resolved), once: a dataset's outputs are checked against all its files.
  const byPath = new Map<string, Named>();
  for (const i of inputs) if (i && !byPath.has(canonical(i.path))) byPath.set(canonical(i.path), i);
  const inputFolders = new Map([...byPath].filter(([, i]) => isFolder(i.path)));

  for (const o of outs) {
    if (o.kind === 'file' && isFolder(o.path)) throw new UserError(`${o.flag} ${o.path}: is a folder; expected a file name`);
    if (o.kind === 'folder' && existsSync(o.path) && !isFolder(o.path)) throw new UserError(`${o.flag} ${o.path}: exists and is not a folder`);
  }
  const seen = new Map<string, Output>();
  for (const o of outs) {
    const first = seen.get(canonical(o.path));
    if (first) throw new UserError(`${o.flag} ${o.path} is the same as ${first.flag}: one output would replace the other`);
    seen.set(canonical(o.path), o);
  }
  for (const o of outs) {
    const input = byPath.get(canonical(o.path));
    if (input)
      throw new UserError(
        o.kind === 'folder' ? `${o.flag} ${o.path} is an input folder (${input.flag}): its images would be overwritten` : `${o.flag} ${o.path} is an input (${input.flag}): it would be overwritten`,
      );
    for (const file of o.kind === 'file' ? [o.path] : (o.files ?? []).map((f) => join(o.path, f))) {
      const path = canonical(file);
      const hit = byPath.get(path) ?? (existsSync(path) ? inputFolders.get(dirname(path)) : undefined);
      if (hit) throw new UserError(`${o.flag} ${o.path}: writing ${file} would overwrite an input (${hit.flag} ${hit.path})`);
    }
    checkWritableDir(o.kind === 'file' ? dirname(resolve(o.path)) : o.path, o.flag);
  }
}
