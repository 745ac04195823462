/**
 * Atomic outputs: temp file + rename, cleanup on failure, grouped outputs, folders created with their first file and
 * removed again while empty, the writable-folder check, and which paths are one.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicOutputs, canonical, checkWritableDir, cleanUpOutputs, ensureWritableDir, OutputError, resetOutputs, trackTemporary, writeFileAtomic } from '../src/io/atomic.ts';
import { assertRejects, assertThrowsError } from './helpers/throws.ts';

const t = suite('atomic');
const tmp = mkdtempSync(join(tmpdir(), 'moefusion-atomic-'));

t('writeFileAtomic replaces the file and leaves no temporary file', async () => {
  const file = join(tmp, 'a.json');
  writeFileSync(file, 'old');
  await writeFileAtomic(file, '{"new":true}');
  await writeFileAtomic(join(tmp, 'b.bin'), new Uint8Array([1, 2, 3]));
  assert.is(readFileSync(file, 'utf8'), '{"new":true}');
  assert.equal([...readFileSync(join(tmp, 'b.bin'))], [1, 2, 3]);
  assert.equal(readdirSync(tmp).sort(), ['a.json', 'b.bin']);
});

t('writeFileAtomic: a failed rename removes the temporary file and keeps the old content', async () => {
  const dir = join(tmp, 'fail');
  ensureWritableDir(join(dir, 'target-is-a-folder'));
  writeFileSync(join(dir, 'x'), '');
  const e = await assertRejects(() => writeFileAtomic(join(dir, 'target-is-a-folder'), 'data'), /(?:)/);
  assert.ok((e as NodeJS.ErrnoException).code, 'a system error');
  assert.equal(readdirSync(dir).sort(), ['target-is-a-folder', 'x']);
});

t('atomicOutputs: nothing appears before commit; abort leaves nothing', async () => {
  const dir = join(tmp, 'group');
  ensureWritableDir(dir);
  const out = atomicOutputs();
  await out.write(join(dir, 'weights.bin'), new Uint8Array(8));
  writeFileSync(out.path(join(dir, 'log.txt')), 'written by a library');
  assert.is(out.path(join(dir, 'log.txt')), out.path(join(dir, 'log.txt')), 'one temporary name per output');
  assert.not.ok(existsSync(join(dir, 'weights.bin')));
  await out.commit();
  assert.equal(readdirSync(dir).sort(), ['log.txt', 'weights.bin']);
  assert.is(readFileSync(join(dir, 'log.txt'), 'utf8'), 'written by a library');

  const dropped = atomicOutputs();
  await dropped.write(join(dir, 'half.bin'), 'x');
  await dropped.abort();
  assert.equal(readdirSync(dir).sort(), ['log.txt', 'weights.bin']);
});

t('ensureWritableDir creates nested folders and names the path in errors', () => {
  const nested = join(tmp, 'a', 'b', 'c');
  ensureWritableDir(nested, '--out');
  assert.ok(existsSync(nested));
  const file = join(tmp, 'plain-file');
  writeFileSync(file, '');
  for (const target of [file, join(file, 'below')])
    assertThrowsError(() => ensureWritableDir(target, '--out'), new RegExp(`^--out ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), OutputError);
  if (process.getuid?.() !== 0) {
    const locked = join(tmp, 'locked');
    ensureWritableDir(locked);
    chmodSync(locked, 0o500);
    try {
      assert.throws(() => ensureWritableDir(locked, '--out'), /locked: the folder is not writable/);
    } finally {
      chmodSync(locked, 0o700);
    }
  }
});

t('a file written into folders that do not exist creates them; cleanUpOutputs removes those that hold no file', async () => {
  resetOutputs();
  const kept = join(tmp, 'made', 'deep', 'x.json');
  await writeFileAtomic(kept, '{}');
  assert.ok(existsSync(kept), 'the folders appear with the file');
  ensureWritableDir(join(tmp, 'empty', 'a', 'b'));
  ensureWritableDir(join(tmp, 'made', 'other')); // inside a created folder that holds a file
  const temporary = join(tmp, 'made', '.half.tmp');
  writeFileSync(temporary, 'half');
  trackTemporary(temporary);
  cleanUpOutputs();
  assert.not.ok(existsSync(join(tmp, 'empty')), 'a created folder with no file is removed, parents included');
  assert.not.ok(existsSync(temporary), 'temporary files are removed');
  assert.ok(existsSync(kept), 'a folder holding an output stays, with its output');
});

t('after cleanUpOutputs(true) (Ctrl-C) nothing more is written', async () => {
  resetOutputs();
  cleanUpOutputs(true);
  try {
    await assertRejects(() => writeFileAtomic(join(tmp, 'late.json'), '{}'), /late\.json: not written: the command was interrupted/);
  } finally {
    resetOutputs();
  }
  assert.not.ok(existsSync(join(tmp, 'late.json')));
});

t('a failed write names the file (never its temporary name) and keeps the system error code', async () => {
  const below = join(tmp, 'plain-file-2');
  writeFileSync(below, '');
  const e = await assertRejects(() => writeFileAtomic(join(below, 'x.png'), 'data'), /plain-file-2\/x\.png: cannot be written \(/, OutputError);
  assert.not.match(e.message, /\.tmp/);
  assert.is(e.code, 'ENOTDIR');
});

t('checkWritableDir tries to create a file and leaves nothing; where none can be created it says so', () => {
  const before = readdirSync(tmp).sort();
  checkWritableDir(join(tmp, 'not', 'yet'), '--out');
  assert.equal(readdirSync(tmp).sort(), before, 'nothing created');
  if (existsSync('/proc/self')) assert.throws(() => checkWritableDir('/proc', '--out'), /--out \/proc: the folder is not writable/);
});

t('canonical paths: one for a path through a link, also for files that do not exist yet', () => {
  const real = join(tmp, 'real');
  mkdirSync(real, { recursive: true });
  const link = join(tmp, 'link');
  symlinkSync(real, link);
  assert.is(canonical(join(link, 'new.csv')), canonical(join(real, 'new.csv')), 'a new file through a linked folder');
  assert.is(canonical(join(real, 'a', '..', 'b')), canonical(join(real, 'b')));
  assert.is.not(canonical(join(real, 'a')), canonical(join(real, 'b')));
});

t.after(() => rmSync(tmp, { recursive: true, force: true }));
t.run();
