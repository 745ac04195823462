/**
 * The fusion runtime as users meet it: the library API (Fuser) and `moefusion fuse` on files and folders, gray and
 * colour, with the comparison picture; and every bad input of the issue, each a clear one-line error, a non-zero
 * exit and no output file left behind.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { cli } from './helpers/cli.ts';
import { SMALL_GATES, writeRoutingWeights } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { Fuser } from '../src/model/fuser.ts';
import { readImage, writeImage } from '../src/io/image.ts';
import { writeSafetensors } from '../src/io/safetensors-file.ts';
import { assertRejects } from './helpers/throws.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-fuse-'));
// A small gate grid keeps the weights file small; the fuser reads the configuration from the file.
const cfg = SMALL_GATES;
const weights = join(dir, 'w.safetensors');
const W = 40;
const H = 30;

async function writePair(folder: string, name: string, w = W, h = H, seed = 1): Promise<void> {
  const r = new Rng(seed);
  mkdirSync(join(folder, 'ir'), { recursive: true });
  mkdirSync(join(folder, 'vi'), { recursive: true });
  await writeImage(join(folder, 'ir', `${name}.png`), Uint8Array.from(r.uniform(w * h, 0, 255)), w, h, 1);
  await writeImage(join(folder, 'vi', `${name}.png`), Uint8Array.from(r.uniform(w * h * 3, 0, 255)), w, h, 3);
}

const t = suite('fuse');

t.before(async () => {
  await gpu();
  await writeRoutingWeights(weights, cfg, 3, new Rng(9));
  await writePair(join(dir, 'data'), 'a', W, H, 1);
  await writePair(join(dir, 'data'), 'b', 24, 20, 2);
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('library: a Fuser fuses gray arrays at their own size, deterministically', async () => {
  const fuser = await Fuser.create({ weights });
  const r = new Rng(4);
  const ir = { width: 33, height: 17, data: r.uniform(33 * 17, 0, 1) };
  const vis = { width: 33, height: 17, data: r.uniform(33 * 17, 0, 1) };
  const a = await fuser.fuse(ir, vis);
  const b = await fuser.fuse(ir, vis);
  assert.is(a.width, 33);
  assert.is(a.data.length, 33 * 17);
  assert.ok(a.data.every(Number.isFinite), 'finite output');
  assert.equal([...a.data], [...b.data], 'same input, same output');
  await assertRejects(() => fuser.fuse(ir, { width: 32, height: 17, data: new Float32Array(32 * 17) }), /33×17 and visible 32×17 differ/);
  fuser.dispose();
});

t('cli: a pair of files → gray and colour fused images at the source size, plus a comparison picture', () => {
  const out = join(dir, 'out-gray.png');
  const compare = join(dir, 'compare.png');
  const r = cli('fuse', '--ir', join(dir, 'data/ir/a.png'), '--vi', join(dir, 'data/vi/a.png'), '--out', out, '--compare', compare, '--weights', weights);
  assert.is(r.code, 0, r.stderr);
  const color = join(dir, 'out-color.png');
  assert.is(cli('fuse', '--ir', join(dir, 'data/ir/a.png'), '--vi', join(dir, 'data/vi/a.png'), '--out', color, '--color', '--weights', weights).code, 0);
  return (async () => {
    const g = await readImage(out);
    assert.equal([g.width, g.height, g.channels], [W, H, 1]);
    const c = await readImage(color);
    assert.equal([c.width, c.height, c.channels], [W, H, 3]);
    const s = await readImage(compare);
    assert.ok(s.width > 3 * W && s.height === H, `comparison picture ${s.width}×${s.height}`);
  })();
});

t('cli: output files in folders that do not exist yet (as `npm run demo` into out/ on a fresh clone) are written, folders created', () => {
  const out = join(dir, 'new', 'deeper', 'fused.png');
  const compare = join(dir, 'other-new', 'compare.png');
  const r = cli('fuse', '--ir', join(dir, 'data/ir/a.png'), '--vi', join(dir, 'data/vi/a.png'), '--out', out, '--compare', compare, '--weights', weights);
  assert.is(r.code, 0, r.stderr);
  assert.ok(existsSync(out) && existsSync(compare), 'both files written');
});

t('cli: two folders → one fused image per matched pair', async () => {
  const out = join(dir, 'out-folder');
  const r = cli('fuse', '--ir', join(dir, 'data/ir'), '--vi', join(dir, 'data/vi'), '--out', out, '--weights', weights);
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(out).sort(), ['a.png', 'b.png']);
  const b = await readImage(join(out, 'b.png'));
  assert.equal([b.width, b.height], [24, 20]);
});

function assertFails(r: { code: number; stderr: string }, pattern: RegExp, outputs: string[]): void {
  assert.is.not(r.code, 0, 'non-zero exit');
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  assert.is(lines.length, 1, `one line of error, got: ${r.stderr}`);
  assert.match(lines[0], /^moefusion: /);
  assert.match(lines[0], pattern);
  for (const o of outputs) assert.not.ok(existsSync(o), `${o} must not exist`);
}

t('bad input: missing file, size mismatch, non-image, wrong weights, unwritable output', async () => {
  const out = join(dir, 'bad.png');
  const ir = join(dir, 'data/ir/a.png');
  const vi = join(dir, 'data/vi/a.png');
  assertFails(cli('fuse', '--ir', join(dir, 'nope.png'), '--vi', vi, '--out', out, '--weights', weights), /nope\.png/, [out]);
  assertFails(cli('fuse', '--ir', ir, '--vi', join(dir, 'data/vi/b.png'), '--out', out, '--weights', weights), /40×30.*24×20|differ|one size/, [out]);
  const text = join(dir, 'not-an-image.png');
  writeFileSync(text, 'hello');
  assertFails(cli('fuse', '--ir', text, '--vi', vi, '--out', out, '--weights', weights), /not-an-image\.png/, [out]);
  const partial = join(dir, 'partial.safetensors');
  writeSafetensors(partial, { 'encoder.Conv1.conv_r.weight': { shape: [16, 1, 3, 3], data: new Float32Array(144) } });
  assertFails(cli('fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', partial), /partial\.safetensors.*missing/, [out]);
  const corrupt = join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from([1, 2, 3]));
  assertFails(cli('fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', corrupt), /corrupt\.safetensors/, [out]);
  const blocker = join(dir, 'a-file');
  writeFileSync(blocker, 'x');
  assertFails(cli('fuse', '--ir', join(dir, 'data/ir'), '--vi', join(dir, 'data/vi'), '--out', join(blocker, 'sub'), '--weights', weights), /a-file/, []);
  copyFileSync(join(dir, 'data/ir/a.png'), join(dir, 'lonely.png'));
  mkdirSync(join(dir, 'unmatched/ir'), { recursive: true });
  mkdirSync(join(dir, 'unmatched/vi'), { recursive: true });
  copyFileSync(ir, join(dir, 'unmatched/ir/x.png'));
  copyFileSync(vi, join(dir, 'unmatched/vi/y.png'));
  assertFails(cli('fuse', '--ir', join(dir, 'unmatched/ir'), '--vi', join(dir, 'unmatched/vi'), '--out', join(dir, 'unmatched-out'), '--weights', weights), /x|y|match/, [join(dir, 'unmatched-out', 'x.png')]);
  mkdirSync(join(dir, 'empty/ir'), { recursive: true });
  mkdirSync(join(dir, 'empty/vi'), { recursive: true });
  assertFails(cli('fuse', '--ir', join(dir, 'empty/ir'), '--vi', join(dir, 'empty/vi'), '--out', join(dir, 'empty-out'), '--weights', weights), /empty/, []);
});

t.run();
