/**
 * `moefusion train` as users meet it, on a tiny dataset (4 pairs of 48×44, crops of 32×24, small gate grids):
 * a run from scratch writes its files and validates after each epoch; --resume continues the step count with a
 * consistent log and the run's own settings; a run killed with SIGKILL resumes from its last checkpoint and leaves no
 * temporary files; a corrupt checkpoint, incomplete --init weights and bad arguments each give one clear line and a
 * non-zero exit (more bad input in train-bad-input.test.ts).
 */
import { suite } from 'uvu';
import { cli, assertFails } from './helpers/cli.ts';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Rng } from '../src/util/rng.ts';
import { readImage, writeImage } from '../src/io/image.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-train-'));
const data = join(dir, 'data');
const MAIN = join(root, 'src/cli/main.ts');
// Small gates keep checkpoints to a few MB; the validation pair (48×44) is large enough for every metric.
const COMMON = ['--data', data, '--batch', '2', '--crop', '32x24', '--gate-grids', '8x6,4x3', '--val-fraction', '0.25'];
const METRICS = ['loss', 'EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'VIF', 'Qabf'];

interface LogLine {
  step: number;
  total?: number;
  epoch?: number;
  validation?: Record<string, number | null>;
  baselines?: Record<string, unknown>;
}

const readLog = (run: string): LogLine[] => readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const trainingSteps = (log: LogLine[]) => log.filter((l) => l.total !== undefined).map((l) => l.step);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const checkpointStep = (run: string) => JSON.parse(readSafetensors(join(run, 'checkpoint.safetensors')).metadata['moefusion.checkpoint']).step as number;
const temporaries = (run: string) => readdirSync(run).filter((f) => /tmp/.test(f));

const t = suite('train-cli');

t.before(async () => {
  const r = new Rng(5);
  for (const m of ['ir', 'vi']) mkdirSync(join(data, m), { recursive: true });
  for (let i = 0; i < 4; i++) {
    await writeImage(join(data, 'ir', `p${i}.png`), Uint8Array.from(r.uniform(48 * 44, 0, 255)), 48, 44, 1);
    await writeImage(join(data, 'vi', `p${i}.png`), Uint8Array.from(r.uniform(48 * 44 * 3, 0, 255)), 48, 44, 3);
  }
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('from scratch: checkpoint, weights, log and loss curve, validation after each epoch; --resume continues', async () => {
  const run = join(dir, 'run');
  const first = cli('train', ...COMMON, '--out', run, '--steps', '4', '--checkpoint-every', '2');
  assert.is(first.code, 0, first.stderr);
  for (const f of ['checkpoint.safetensors', 'weights.safetensors', 'log.jsonl', 'loss.png']) assert.ok(existsSync(join(run, f)), f);
  assert.match(first.stdout, /3 pairs \(validation 1\).*2 steps per epoch\), crop 32x24/);
  assert.match(first.stdout, /step 2 \(epoch 1\) validation: loss \S+, EN \S+, SD/);
  let log = readLog(run);
  assert.equal(trainingSteps(log), range(1, 4));
  const validations = log.filter((l) => l.validation);
  assert.equal(validations.map((l) => [l.step, l.epoch]), [[2, 1], [4, 2]], 'one validation per epoch (2 steps)');
  for (const v of validations) {
    const { stretch, ...clamped } = v.validation! as Record<string, unknown>;
    assert.equal(Object.keys(clamped), METRICS);
    assert.equal(Object.keys(stretch as object), METRICS.slice(1), 'the stretched output is scored too');
    for (const m of METRICS) assert.ok(Number.isFinite(v.validation![m]), `${m} = ${v.validation![m]}`);
  }
  // The training-free fusions on the same frames, once at the start, for comparison.
  const baselines = log.filter((l) => l.baselines);
  assert.equal(baselines.map((l) => l.step), [0]);
  assert.equal(Object.keys(baselines[0].baselines!), ['max', 'multiscale']);
  assert.match(first.stdout, /baseline multiscale on the validation frames: clamp \(EN \S+/);
  const curve = await readImage(join(run, 'loss.png'));
  assert.ok(curve.width > 100 && curve.channels === 3, 'loss.png is a picture');

  // Options left out take the checkpoint's values (batch, crop, gate grids, validation share).
  const second = cli('train', '--data', data, '--out', run, '--steps', '6', '--checkpoint-every', '2', '--resume');
  assert.is(second.code, 0, second.stderr);
  assert.match(second.stdout, /3 pairs \(validation 1\), 6 steps, batch 2 \(2 steps per epoch\), crop 32x24, resuming at step 4/);
  log = readLog(run);
  assert.equal(trainingSteps(log), range(1, 6), 'the step count continues');
  assert.equal(log.filter((l) => l.validation).map((l) => l.step), [2, 4, 6]);
  assert.equal(log.filter((l) => l.baselines).map((l) => l.step), [0], 'the baselines once');
  assert.is(checkpointStep(run), 6);
  assert.equal(temporaries(run), []);
});

t('a run killed with SIGKILL after a checkpoint resumes from it; no temporary files are left', async () => {
  const run = join(dir, 'killed');
  const args = ['train', ...COMMON, '--val-fraction', '0', '--out', run, '--checkpoint-every', '2', '--milestones', '1000'];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--steps', '500'], { cwd: root, stdio: 'ignore' });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const checkpoint = join(run, 'checkpoint.safetensors');
  // Waits on the run's own state (its first checkpoint, or its end); the cap only keeps a broken run from hanging the suite.
  const cap = Date.now() + 15 * 60_000;
  while (!existsSync(checkpoint) && Date.now() < cap && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await exited;
  assert.ok(existsSync(checkpoint), 'the first checkpoint was written before the kill');
  const saved = checkpointStep(run);
  assert.ok(saved >= 2 && saved < 500, `checkpoint at step ${saved}`);
  // A kill during a write leaves the writer's temporary file; make sure of one of each kind.
  writeFileSync(join(run, '.log.jsonl.123.abcd.tmp'), 'partial');
  writeFileSync(join(run, 'checkpoint.safetensors.tmp-123-456'), 'partial');

  const resumed = cli(...args, '--steps', String(saved + 2), '--resume');
  assert.is(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`resuming at step ${saved}\\b`));
  assert.equal(trainingSteps(readLog(run)), range(1, saved + 2), 'each step logged once');
  assert.is(checkpointStep(run), saved + 2);
  assert.equal(temporaries(run), [], 'no temporary files');
});

t('a corrupt checkpoint: one line naming it, non-zero exit, the file left as it was', () => {
  const run = join(dir, 'corrupt');
  assert.is(cli('train', ...COMMON, '--out', run, '--steps', '1', '--val-fraction', '0').code, 0);
  const checkpoint = join(run, 'checkpoint.safetensors');
  truncateSync(checkpoint, 5000);
  const before = readFileSync(checkpoint);
  assertFails(cli('train', ...COMMON, '--out', run, '--steps', '3', '--resume'), /checkpoint\.safetensors.*(truncated|damaged)/);
  assert.ok(readFileSync(checkpoint).equals(before), 'the corrupt checkpoint is not replaced');
  assert.equal(temporaries(run), []);
});

t('--init: the starting weights are validated before the first step; --val-every replaces the validation after each epoch; --snapshots', () => {
  const from = join(dir, 'run', 'weights.safetensors');
  const run = join(dir, 'from-init');
  const r = cli('train', ...COMMON, '--out', run, '--steps', '4', '--val-every', '3', '--snapshots', '--init', from);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /step 0 \(the --init weights\) validation: loss \S+, EN/);
  const log = readLog(run);
  // --val-every 3 replaces the validation after each epoch (2 steps): steps 3 and the last.
  assert.equal(log.filter((l) => l.validation).map((l) => l.step), [0, 3, 4]);
  assert.equal(trainingSteps(log), [1, 2, 3, 4]);
  // --snapshots keeps the weights of each validated step, loadable as weights.
  assert.equal(readdirSync(run).filter((f) => f.startsWith('weights-step')).sort(), ['weights-step3.safetensors', 'weights-step4.safetensors']);
  assert.is(JSON.parse(JSON.stringify(readSafetensors(join(run, 'weights-step3.safetensors')).metadata)).steps, '3');
});

t('--init with weights that lack tensors names the file and a tensor', () => {
  const partial = join(dir, 'partial.safetensors');
  writeSafetensors(partial, { 'encoder.Conv1.conv_r.weight': { shape: [16, 1, 3, 3], data: new Float32Array(144) } });
  assertFails(cli('train', ...COMMON, '--out', join(dir, 'init-run'), '--steps', '1', '--init', partial), /partial\.safetensors: missing \d+ tensor\(s\): \S+/);
});

t('bad arguments and datasets: one clear line each, no run folder created', () => {
  const out = join(dir, 'never');
  const train = (...a: string[]) => cli('train', '--data', data, '--out', out, '--steps', '2', ...a);
  assertFails(train('--crop', 'big'), /--crop big: expected SIZE, WIDTHxHEIGHT/);
  assertFails(train('--crop', '0x32'), /--crop 0x32/);
  assertFails(train('--steps', '0'), /--steps 0: expected a positive integer/);
  assertFails(train('--gate-grids', '6x8'), /--gate-grids 6x8: expected LOCAL_WxH,GLOBAL_WxH/);
  assertFails(cli('train', '--data', join(dir, 'nowhere'), '--out', out), /nowhere: no such folder/);
  for (const m of ['ir', 'vi']) mkdirSync(join(dir, 'empty', m), { recursive: true });
  assertFails(cli('train', '--data', join(dir, 'empty'), '--out', out), /empty[/\\]ir: no images .*it is empty/);
  assert.not.ok(existsSync(out), 'no run folder for bad arguments');
  assertFails(train('--crop', '64', '--val-fraction', '0', '--gate-grids', '8x6,4x3'), /p\d\.png is 48×44, smaller than --crop 64x64 \(WIDTHxHEIGHT\)/);
  assert.not.ok(existsSync(out), 'a run failing at its first image removes the folder it created');
  assertFails(cli('train', '--data', data, '--out', join(dir, 'run'), '--steps', '8'), /already holds a run.*--resume/);
  assertFails(cli('train', '--data', data, '--out', join(dir, 'fresh'), '--resume'), /fresh[/\\]checkpoint\.safetensors does not exist/);
});

t.run();
