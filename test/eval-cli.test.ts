/** `moefusion eval` (the CLI's main, in this process) on a few TNO pairs copied to a temporary folder: outputs, bad-input errors and exit codes. */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../src/cli/main.ts';
import { EXIT_USAGE, EXIT_USER } from '../src/cli/errors.ts';
import { writeImage } from '../src/io/image.ts';
import { evaluate } from '../src/metrics/evaluate.ts';
import { METRIC_NAMES, PROTOCOLS } from '../src/metrics/protocols.ts';

const TNO = '/work/shared/data/tno';
const IMAGES = ['05.png', '08.png', '11.png'];
const METHODS = ['SeAFusion', 'DenseFuse'];
const test = suite('eval CLI');

let root = '';

/** A fresh copy of the fixture folders: ir/, vi/, and one folder per method. */
function fixture(): string {
  const dir = mkdtempSync(join(root, 'case-'));
  for (const sub of ['ir', 'vi', ...METHODS]) mkdirSync(join(dir, sub));
  for (const image of IMAGES) {
    copyFileSync(join(TNO, 'ir', image), join(dir, 'ir', image));
    copyFileSync(join(TNO, 'vi', image), join(dir, 'vi', image));
    for (const m of METHODS) copyFileSync(join(TNO, 'fused', m, image), join(dir, m, image));
  }
  return dir;
}

/** Runs `moefusion eval ARGS` and captures what it printed (stdout lines, stderr text) and its exit code. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (err.push(String(chunk).trimEnd()), true)) as typeof process.stderr.write;
  const exitCode = process.exitCode;
  try {
    const code = await main(['node', 'moefusion', 'eval', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
    process.exitCode = exitCode;
  }
}

const baseArgs = (dir: string) => ['--ir', join(dir, 'ir'), '--vi', join(dir, 'vi'), ...METHODS.flatMap((m) => ['--fused', `${m}=${join(dir, m)}`])];

test.before(() => {
  root = mkdtempSync(join(tmpdir(), 'moefusion-eval-'));
});
test.after(() => rmSync(root, { recursive: true, force: true }));

test('tang: JSON means match the MATLAB reference CSV; CSV and Markdown written', async () => {
  const dir = fixture();
  const [json, csv, md] = ['out.json', 'out.csv', 'out.md'].map((f) => join(dir, f));
  const { code, out } = await run([...baseArgs(dir), '--json', json, '--csv', csv, '--markdown', md, '--per-image']);
  assert.is(code, 0);
  assert.match(out, 'protocol tang');
  const result = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(Object.keys(result), METHODS);

  const reference = readFileSync(join(TNO, 'metrics-tang.csv'), 'utf8').trim().split('\n');
  const columns = reference[0].split(',');
  for (const method of METHODS) {
    const entry = result[method];
    assert.is(entry.images, IMAGES.length);
    for (const name of METRIC_NAMES) {
      assert.type(entry[name], 'number', `${method} ${name}`);
      assert.type(entry.std[name], 'number');
    }
    const rows = reference.filter((r) => IMAGES.some((i) => r.startsWith(`${i},${method},`))).map((r) => r.split(','));
    assert.is(rows.length, IMAGES.length);
    for (const name of ['EN', 'MI', 'SF', 'AG', 'CC', 'SCD', 'Qabf', 'PSNR']) {
      const j = columns.indexOf(name);
      const expected = rows.reduce((s, r) => s + Number(r[j]), 0) / rows.length;
      assert.ok(Math.abs(entry[name] - expected) <= 1e-6, `${method} mean ${name}: ${entry[name]} vs ${expected}`);
    }
    assert.equal(Object.keys(entry.perImage), IMAGES);
  }
  const csvLines = readFileSync(csv, 'utf8').trim().split('\n');
  assert.is(csvLines[0], ['protocol', 'method', 'image', ...METRIC_NAMES].join(','));
  assert.is(csvLines.length, 1 + METHODS.length * (IMAGES.length + 2));
  assert.match(readFileSync(md, 'utf8'), /\| SeAFusion \| 3 \| \d+\.\d{4} ± /);
});

test('cddfuse and vifb protocols run and differ from tang where their definitions do', async () => {
  const dir = fixture();
  const results: Record<string, Record<string, Record<string, number>>> = {};
  for (const protocol of ['tang', 'cddfuse', 'vifb']) {
    const json = join(dir, `${protocol}.json`);
    assert.is((await run([...baseArgs(dir), '--protocol', protocol, '--json', json])).code, 0);
    results[protocol] = JSON.parse(readFileSync(json, 'utf8'));
  }
  const [t, c, v] = [results.tang.DenseFuse, results.cddfuse.DenseFuse, results.vifb.DenseFuse];
  assert.ok(Math.abs(t.EN - c.EN) < 1e-9, 'EN is the same everywhere on gray images');
  assert.ok(c.MI < t.MI, 'nats are smaller than bits');
  assert.ok(c.AG < t.AG, 'M·N is a larger denominator than (M−1)(N−1)');
  assert.ok(v.SF < t.SF, 'M·N is a larger denominator than the difference counts');
  assert.ok(c.SSIM > 1 && v.SSIM > 1 && t.SSIM < 1, 'cddfuse and vifb add the two SSIMs, tang averages');
});

test('bad input: fused size differs, missing pair, unreadable file: one error naming the file, no output', async () => {
  const cases: Array<[string, (dir: string) => Promise<string>]> = [
    ['size', async (dir) => {
      const path = join(dir, 'DenseFuse', '08.png');
      await writeImage(path, new Uint8Array(30 * 20), 30, 20, 1);
      return path;
    }],
    ['missing', async (dir) => (rmSync(join(dir, 'vi', '11.png')), join(dir, 'ir', '11.png'))],
    ['unreadable', async (dir) => (writeFileSync(join(dir, 'SeAFusion', '05.png'), 'not a png'), join(dir, 'SeAFusion', '05.png'))],
    ['smaller than the VIF windows', async (dir) => {
      for (const sub of ['ir', 'vi', ...METHODS]) await writeImage(join(dir, sub, '11.png'), new Uint8Array(40 * 60).fill(9), 40, 60, 1);
      return join(dir, 'ir', '11.png');
    }],
  ];
  for (const [what, spoil] of cases) {
    const dir = fixture();
    const named = await spoil(dir);
    const json = join(dir, 'out.json');
    const { code, err } = await run([...baseArgs(dir), '--json', json]);
    assert.is(code, EXIT_USER, what);
    assert.ok(err.startsWith('moefusion: '), `${what}: ${err}`);
    assert.ok(err.includes(named), `${what}: the error should name ${named}: ${err}`);
    assert.is(err.trim().split('\n').length, 1, `${what}: one error line`);
    assert.not.ok(existsSync(json), `${what}: no JSON written`);

    const skipped = await run([...baseArgs(dir), '--json', json, '--skip-bad']);
    assert.is(skipped.code, 0, `${what} with --skip-bad`);
    assert.match(skipped.err, 'skipped:');
    const result = JSON.parse(readFileSync(json, 'utf8'));
    const counts = METHODS.map((m) => result[m].images);
    assert.ok(counts.some((n) => n === IMAGES.length - 1), `${what}: one image fewer (${counts})`);
  }
});

test('scoring on worker threads gives exactly the values scored in this thread', async () => {
  const dir = fixture();
  const options = {
    irDir: join(dir, 'ir'),
    viDir: join(dir, 'vi'),
    fused: METHODS.map((method) => ({ method, dir: join(dir, method) })),
    protocol: PROTOCOLS.tang,
  };
  const [inThread, onWorkers] = await Promise.all([evaluate({ ...options, workers: 0 }), evaluate({ ...options, workers: 2 })]);
  assert.equal(onWorkers, inThread);
});

test('usage errors exit 2; missing folders, empty folders and an unwritable --json exit 1 before any scoring', async () => {
  const dir = fixture();
  assert.is((await run([...baseArgs(dir), '--protocol', 'nope'])).code, EXIT_USAGE);
  const bad = await run(['--ir', join(dir, 'ir'), '--vi', join(dir, 'vi'), '--fused', 'noequals']);
  assert.is(bad.code, EXIT_USAGE);
  assert.match(bad.err, /^moefusion: option '--fused <name=dir>' argument 'noequals' is invalid. expected NAME=DIR/);
  const cases: Array<[string, string[], RegExp]> = [
    ['missing folder', ['--ir', join(dir, 'nowhere'), '--vi', join(dir, 'vi'), '--fused', `a=${join(dir, 'DenseFuse')}`], /nowhere/],
    ['unwritable --json', [...baseArgs(dir), '--json', join(dir, 'no', 'such', 'folder', 'x.json')], /--json .*does not exist/],
    ['--json is a folder', [...baseArgs(dir), '--json', dir], /--json .*is a folder/],
  ];
  mkdirSync(join(dir, 'empty'));
  cases.push(['empty folder', ['--ir', join(dir, 'empty'), '--vi', join(dir, 'vi'), '--fused', `a=${join(dir, 'DenseFuse')}`], /empty/]);
  for (const [what, args, pattern] of cases) {
    const r = await run(args);
    assert.is(r.code, EXIT_USER, what);
    assert.match(r.err, pattern, what);
    assert.ok(r.err.startsWith('moefusion: '), `${what}: ${r.err}`);
  }
});

test.run();
