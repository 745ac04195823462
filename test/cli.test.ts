/** The command line: `info`, usage errors, the error handler's one-line messages, and the progress lines. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describeError, EXIT_GPU, EXIT_INTERNAL, EXIT_USAGE, EXIT_USER, UserError } from '../src/cli/errors.ts';
import { createProgress, formatDuration } from '../src/cli/progress.ts';
import { DatasetError } from '../src/io/dataset.ts';
import { DeviceLostError, LimitError, NoAdapterError } from '../src/runtime/errors.ts';
import { OutputError } from '../src/io/atomic.ts';
import { ImageTooLargeError } from '../src/io/image-types.ts';
import { ours, sh } from './helpers/cli.ts';

const t = suite('cli');
const root = resolve(import.meta.dirname, '..');


t('`info --json` names the adapter, its limits and the version', async () => {
  const r = await sh('npx', ['tsx', 'src/cli/main.ts', 'info', '--json']);
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
  assert.is(info.version, pkg.version);
  const a = info.adapter;
  assert.ok(`${a.vendor}${a.architecture}${a.device}${a.description}`.length > 0, 'the adapter has a name');
  for (const k of ['vendor', 'architecture', 'device', 'description', 'backend']) assert.type(a[k], 'string', k);
  assert.type(a.isSoftware, 'boolean');
  assert.ok(info.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024, 'binding limit');
  assert.ok(Array.isArray(info.features));
});

t('the npm bin runs `info` as text', async () => {
  const r = await sh(process.execPath, ['bin/moefusion.mjs', 'info']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^moefusion\s+\d+\.\d+\.\d+ \(webgpu /);
  assert.match(r.stdout, /\nadapter\s+\S/);
  assert.match(r.stdout, /\nsoftware\s+(yes|no) /);
  assert.match(r.stdout, /maxStorageBufferBindingSize\s+\d/);
});

t('usage errors: unknown subcommand, unknown option, missing argument — one clear line, exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['bogus'], /^moefusion: unknown command 'bogus'$/],
    [['info', '--bogus'], /^moefusion: unknown option '--bogus'$/],
    [['--adapter'], /^moefusion: option '--adapter <name>' argument missing$/],
    [['fuse', '--vi', 'v.png'], /^moefusion: required option '--ir <path>' not specified$/],
    [['--backend', 'webgl', 'info'], /^moefusion: option '--backend <name>' argument 'webgl' is invalid/],
  ];
  for (const [args, pattern] of cases) {
    const r = await sh(process.execPath, ['bin/moefusion.mjs', ...args]);
    assert.is(r.code, EXIT_USAGE, args.join(' '));
    assert.match(ours(r.stderr)[0] ?? r.stderr, pattern);
    assert.is(r.stdout, '', 'nothing on stdout');
  }
});

t('a runtime failure (no adapter of that name) becomes one line and the GPU exit code', async () => {
  const r = await sh(process.execPath, ['bin/moefusion.mjs', '--adapter', 'no-such-adapter-zz', 'info']);
  assert.is(r.code, EXIT_GPU, r.stderr);
  const lines = ours(r.stderr);
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^moefusion: no WebGPU adapter available/);
});

t('describeError: input errors as they are, GPU errors explained, system errors named, the rest internal', () => {
  assert.equal(describeError(new UserError('--ir x: no such file')), { message: '--ir x: no such file', exitCode: EXIT_USER });
  assert.equal(describeError(new DatasetError('d: empty')), { message: 'd: empty', exitCode: EXIT_USER });
  assert.is(describeError(new NoAdapterError('none')).exitCode, EXIT_GPU);
  assert.match(describeError(new LimitError('buffer of 5 GiB')).message, /^too large for this GPU: buffer of 5 GiB$/);
  assert.match(describeError(new DeviceLostError('unknown', 'crash')).message, /^the GPU device was lost \(unknown\): crash\. Run again/);
  const enoent = Object.assign(new Error("ENOENT: no such file or directory, open 'w.bin'"), { code: 'ENOENT', path: 'w.bin' });
  assert.equal(describeError(enoent), { message: 'w.bin: no such file or folder', exitCode: EXIT_USER });
  // A full disk is a resource whatever was being written; too large to decode is "too large", as for the GPU.
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write '/x/.f.png.123.tmp'"), { code: 'ENOSPC' });
  assert.equal(describeError(new OutputError('f.png', 'cannot be written (no space left on the device)', enospc)), { message: 'f.png: cannot be written (no space left on the device)', exitCode: EXIT_GPU });
  assert.equal(describeError(enospc).exitCode, EXIT_GPU);
  assert.is(describeError(new ImageTooLargeError('a.png', '20000×20000 is larger than …')).exitCode, EXIT_GPU);
  const bug = describeError(new TypeError('x is undefined'));
  assert.is(bug.exitCode, EXIT_INTERNAL);
  assert.match(bug.message, /^internal error: x is undefined/);
});

/** A non-TTY stream that keeps what is written. */
function sink(): Writable & { text: string } {
  const s = new Writable({
    write(chunk, _enc, done) {
      s.text += String(chunk);
      done();
    },
  }) as Writable & { text: string };
  s.text = '';
  return s;
}

t('progress without a terminal: periodic plain lines with ETA and fields, and a final line', () => {
  const stream = sink();
  let clock = 0;
  const bar = createProgress(10, 'train', { stream, intervalMs: 1000, now: () => clock });
  for (let i = 0; i < 10; i++) {
    clock += 400;
    bar.tick({ loss: 0.0123456, step: i + 1 });
  }
  bar.stop();
  bar.stop();
  const lines = stream.text.trim().split('\n');
  // Lines at 1.2 s (3 done), 2.4 s (6 done), 3.6 s (9 done), and the final one.
  assert.equal(lines, [
    'train: 3/10 (30%) 1s elapsed, ETA 3s  loss 0.01235  step 3',
    'train: 6/10 (60%) 2s elapsed, ETA 2s  loss 0.01235  step 6',
    'train: 9/10 (90%) 4s elapsed, ETA 0s  loss 0.01235  step 9',
    'train: 10/10 (100%) 4s elapsed, ETA 0s  loss 0.01235  step 10',
  ]);
  const quiet = sink();
  const q = createProgress(3, 'x', { stream: quiet, quiet: true });
  q.tick();
  q.stop();
  assert.is(quiet.text, '');
});

t('progress of a resumed loop: the ETA from the pace since the position it resumed at', () => {
  const stream = sink();
  let clock = 0;
  const bar = createProgress(1000, 'train', { stream, intervalMs: 1000, now: () => clock, start: 900 });
  for (let i = 0; i < 10; i++) {
    clock += 1000;
    bar.tick();
  }
  // 10 steps in 10 s since step 900: 90 left take 90 s (not 90 × 10 s / 910).
  assert.match(stream.text.trim().split('\n').at(-1)!, /^train: 910\/1000 \(91%\) 10s elapsed, ETA 1m30s$/);
});

t('formatDuration', () => {
  assert.equal([0.4, 42, 185, 7620, NaN].map(formatDuration), ['0s', '42s', '3m05s', '2h07m', '?']);
});

t.run();
