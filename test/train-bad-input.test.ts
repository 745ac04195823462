/**
 * `moefusion train` refuses bad input up front: each case below exits with code 1 (2 for a malformed value) and one line naming the flag (with
 * the value) or the file, and leaves nothing behind: no new --out folder, and a run resumed with changed settings or
 * other data keeps its folder exactly as it was.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, cliAsync, assertFails, type CliResult } from './helpers/cli.ts';
import { Rng } from '../src/util/rng.ts';
import { writeImage } from '../src/io/image.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-train-bad-'));
const data = join(dir, 'data');
const copy = join(dir, 'data-copy');
const labelled = join(dir, 'labelled');
const run = join(dir, 'run');
const fresh = join(dir, 'fresh');
/** The settings of the run that the resume cases try to change. */
const RUN = ['--batch', '2', '--crop', '32x24', '--gate-grids', '8x6,4x3', '--val-fraction', '0.25', '--seed', '3', '--milestones', '5', '--checkpoint-every', '2'];

async function writePairs(root: string, names: string[], seed: number): Promise<void> {
  const r = new Rng(seed);
  for (const m of ['ir', 'vi']) mkdirSync(join(root, m), { recursive: true });
  for (const n of names) {
    await writeImage(join(root, 'ir', `${n}.png`), Uint8Array.from(r.uniform(48 * 44, 0, 255)), 48, 44, 1);
    await writeImage(join(root, 'vi', `${n}.png`), Uint8Array.from(r.uniform(48 * 44, 0, 255)), 48, 44, 1);
  }
}

/** Every file of a folder with its bytes, to show that a refused command changed nothing. */
function snapshot(folder: string): Map<string, Buffer> {
  return new Map(readdirSync(folder).sort().map((f) => [f, readFileSync(join(folder, f))]));
}

interface Case {
  name: string;
  args: string[];
  /** Matched against the one error line. */
  message: RegExp;
  /** Exit code: 1 (bad input) unless given; 2 for a value that is not of its option's kind (usage). */
  code?: number;
}

/** A case whose flag value is malformed: a usage error, exit 2. */
const usage = (c: Case): Case => ({ ...c, code: 2 });

/** A new run into `fresh` (which must not exist afterwards). */
const fromScratch = (name: string, args: string[], message: RegExp): Case => ({ name, args: ['--data', data, '--out', fresh, '--steps', '2', ...args], message });
/** A resumed run in `run` (which must stay as it is). */
const resumed = (name: string, args: string[], message: RegExp): Case => ({ name, args: ['--data', data, '--out', run, '--resume', ...args], message });

const t = suite('train-bad-input');

t.before(async () => {
  await writePairs(data, ['p0', 'p1', 'p2', 'p3'], 5);
  cpSync(data, copy, { recursive: true });
  await writePairs(labelled, ['q0', 'q1'], 6);
  const r = cli('train', '--data', data, '--out', run, '--steps', '2', ...RUN);
  assert.is(r.code, 0, r.stderr);
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

async function check(cases: Case[], folderAfter: () => void): Promise<void> {
  // Two commands at a time: they fail before the GPU starts, so most of their time is start-up.
  const results: CliResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await cliAsync('train', ...cases[i].args);
    }
  };
  await Promise.all([worker(), worker()]);
  cases.forEach((c, i) => {
    const r = results[i];
    try {
      assert.is(r.code, c.code ?? 1, `exit code (stderr: ${r.stderr.trim()})`);
      assertFails(r, c.message);
    } catch (e) {
      (e as Error).message = `${c.name}: ${(e as Error).message}`;
      throw e;
    }
  });
  folderAfter();
}

t('bad values of a new run: the flag and the value named, no --out folder created', async () => {
  writeFileSync(join(dir, 'a-file'), 'not a folder');
  const cases: Case[] = [
    usage(fromScratch('seed not a number', ['--seed', 'abc'], /^moefusion: --seed abc: expected an integer from 0 to \d+$/)),
    usage(fromScratch('negative seed', ['--seed', '-1'], /--seed -1: expected an integer/)),
    usage(fromScratch('fractional seed', ['--seed', '1.5'], /--seed 1\.5: expected an integer/)),
    usage(fromScratch('weight decay not a number', ['--weight-decay', 'abc'], /--weight-decay abc: expected a number ≥ 0/)),
    usage(fromScratch('negative weight decay', ['--weight-decay', '-1e-4'], /--weight-decay -1e-4: expected a number ≥ 0/)),
    usage(fromScratch('zero learning rate', ['--lr', '0'], /--lr 0: expected a positive number/)),
    usage(fromScratch('infinite learning rate', ['--lr', 'Infinity'], /--lr Infinity: expected a positive number/)),
    usage(fromScratch('learning rate in hex', ['--lr', '0x10'], /--lr 0x10: expected a positive number/)),
    usage(fromScratch('negative clip', ['--clip', '-3'], /--clip -3: expected a positive number/)),
    usage(fromScratch('zero gamma', ['--gamma', '0'], /--gamma 0: expected a positive number/)),
    usage(fromScratch('fractional batch', ['--batch', '2.5'], /--batch 2\.5: expected a positive integer/)),
    usage(fromScratch('zero batch', ['--batch', '0'], /--batch 0: expected a positive integer/)),
    usage(fromScratch('steps with a unit', ['--steps', '10k'], /--steps 10k: expected a positive integer/)),
    usage(fromScratch('a milestone not a number', ['--milestones', '5,abc'], /--milestones 5,abc: expected comma-separated steps \(positive integers\)/)),
    usage(fromScratch('validation share of 1', ['--val-fraction', '1'], /--val-fraction 1: expected a number in \[0, 1\)/)),
    usage(fromScratch('validation share not a number', ['--val-fraction', 'half'], /--val-fraction half: expected a number ≥ 0/)),
    usage(fromScratch('validation every 0 steps', ['--val-every', '0'], /--val-every 0: expected a positive integer/)),
    usage(fromScratch('negative checkpoint interval', ['--checkpoint-every', '-2'], /--checkpoint-every -2: expected a positive integer/)),
    usage(fromScratch('crop of zero width', ['--crop', '0x32'], /--crop 0x32: expected SIZE, WIDTHxHEIGHT/)),
    usage(fromScratch('crop in the old order with a separator', ['--crop', '32,24'], /--crop 32,24: expected SIZE, WIDTHxHEIGHT/)),
    usage(fromScratch('unknown attention', ['--attention', 'boxs'], /--attention boxs: expected one of boxes, none, detector, saliency/)),
    usage(fromScratch('no classes', ['--classes', ','], /--classes ,: expected comma-separated class names/)),
    usage(fromScratch('gate grids half given', ['--gate-grids', '6x8'], /--gate-grids 6x8: expected LOCAL_WxH,GLOBAL_WxH/)),
    fromScratch('detector without boxes', ['--attention', 'detector'], /--attention detector needs boxes: .*data has no labels folder/),
    fromScratch('resume without a checkpoint', ['--resume'], /--resume: .*fresh[/\\]checkpoint\.safetensors does not exist/),
    fromScratch('init file missing', ['--init', join(dir, 'none.safetensors')], /none\.safetensors: no such file/),
    { name: 'data folder missing', args: ['--data', join(dir, 'nowhere'), '--out', fresh], message: /nowhere: no such folder/ },
    { name: 'out is a file', args: ['--data', data, '--out', join(dir, 'a-file')], message: /--out .*a-file: exists and is not a folder/ },
    // Found at the first image, after the GPU started: the folders made for the run are removed again.
    {
      name: 'crop larger than the images',
      args: ['--data', data, '--out', join(fresh, 'nested', 'run'), '--steps', '2', '--crop', '64x40', '--gate-grids', '8x6,4x3', '--val-fraction', '0'],
      message: /p\d\.png is 48×44, smaller than --crop 64x40 \(WIDTHxHEIGHT\)/,
    },
  ];
  await check(cases, () => assert.not.ok(existsSync(fresh), 'no --out folder left behind'));
});

t('--resume with changed settings: the flag with both values named, the run left as it was', async () => {
  const before = snapshot(run);
  const cases: Case[] = [
    resumed('batch', ['--batch', '4'], /--batch 4 differs from the checkpoint's 2/),
    resumed('crop', ['--crop', '24x32'], /--crop 24x32 differs from the checkpoint's 32x24/),
    resumed('crop none', ['--crop', 'none'], /--crop none differs from the checkpoint's 32x24/),
    resumed('learning rate', ['--lr', '1e-3'], /--lr 0\.001 differs from the checkpoint's 0\.0001/),
    resumed('seed', ['--seed', '4'], /--seed 4 differs from the checkpoint's 3/),
    resumed('weight decay', ['--weight-decay', '0'], /--weight-decay 0 differs from the checkpoint's 0\.0001/),
    resumed('clip', ['--clip', '1'], /--clip 1 differs from the checkpoint's 35/),
    resumed('gamma', ['--gamma', '0.5'], /--gamma 0\.5 differs from the checkpoint's 0\.1/),
    resumed('milestones', ['--milestones', '5,7'], /--milestones 5,7 differs from the checkpoint's 5/),
    resumed('attention', ['--attention', 'none'], /--attention none differs from the checkpoint's boxes/),
    resumed('gate grids', ['--gate-grids', '16x12,8x6'], /--gate-grids 16x12,8x6 differs from the checkpoint's 8x6,4x3/),
    resumed('validation share', ['--val-fraction', '0.5'], /--val-fraction 0\.5 differs from the checkpoint's 0\.25/),
    resumed('steps below the checkpoint', ['--steps', '1'], /--steps 1 is below the checkpoint's step 2/),
    usage(resumed('a bad value is still named first', ['--batch', 'two'], /--batch two: expected a positive integer/)),
    { name: 'other data folder', args: ['--data', copy, '--out', run, '--resume'], message: /--data .*data-copy differs from the checkpoint's .*data\b/ },
    { name: 'another dataset', args: ['--data', labelled, '--out', run, '--resume'], message: /--data .*labelled differs from the checkpoint's/ },
    { name: 'two data folders', args: ['--data', data, copy, '--out', run, '--resume'], message: /--data .*data .*data-copy differs from the checkpoint's/ },
  ];
  await check(cases, () => assert.equal(snapshot(run), before, 'the run folder is unchanged'));
});

t('--resume after the data folder changed: the new and missing pairs named, the run left as it was', async () => {
  const before = snapshot(run);
  await writePairs(data, ['p4'], 7);
  rmSync(join(data, 'ir', 'p0.png'));
  rmSync(join(data, 'vi', 'p0.png'));
  try {
    await check(
      [resumed('pairs changed', [], /--data .*data: the (training|validation) pairs differ from the checkpoint's \(\d now, \d then; (new: p4|missing: p0)/)],
      () => assert.equal(snapshot(run), before, 'the run folder is unchanged'),
    );
  } finally {
    rmSync(join(data, 'ir', 'p4.png'));
    rmSync(join(data, 'vi', 'p4.png'));
    cpSync(join(copy, 'ir', 'p0.png'), join(data, 'ir', 'p0.png'));
    cpSync(join(copy, 'vi', 'p0.png'), join(data, 'vi', 'p0.png'));
  }
});

t.run();
