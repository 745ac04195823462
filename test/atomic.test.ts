/** Atomic outputs: temp file + rename, cleanup on failure, grouped outputs, and the writable-folder check. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicOutputs, ensureWritableDir, OutputError, writeFileAtomic } from '../src/io/atomic.ts';

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
  try {
    await writeFileAtomic(join(dir, 'target-is-a-folder'), 'data');
    assert.unreachable('renaming a file over a folder must fail');
  } catch (e) {
    assert.ok((e as NodeJS.ErrnoException).code, 'a system error');
  }
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
  for (const target of [file, join(file, 'below')]) {
    try {
      ensureWritableDir(target, '--out');
      assert.unreachable(`${target} is not a folder`);
    } catch (e) {
      assert.instance(e, OutputError);
      assert.match((e as Error).message, new RegExp(`^--out ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    }
  }
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

t.after(() => rmSync(tmp, { recursive: true, force: true }));
t.run();
