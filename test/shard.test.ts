/**
 * Sharded fusion of a dataset, as a job array runs it (deploy/): `fuse --shard I/N` over three shards fuses every
 * pair exactly once (the union is all pairs, the shards are disjoint, each is the stable FNV-1a split), and
 * `--skip-existing` redoes only what is missing or truncated, leaving finished outputs untouched (same mtime).
 * Tiny images and a small-gate weights file keep it quick.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { SMALL_GATES, writeRoutingWeights } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { readImage, writeImage } from '../src/io/image.ts';
import { shardOf, type FuseSummary } from '../src/cli/fuse.ts';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-shard-'));
const weights = join(dir, 'w.safetensors');
const cfg = SMALL_GATES;
const NAMES = ['00012D', '00537D', '01003N', 'a', 'b', 'c', 'night-7', 'road_42', 'x'];
const SHARDS = 3;
const [W, H] = [20, 16];

function fuse(...args: string[]): FuseSummary {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'fuse', '--ir', join(dir, 'ir'), '--vi', join(dir, 'vi'), '--out', join(dir, 'out'), '--weights', weights, '--json', ...args], { encoding: 'utf8', cwd: root });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as FuseSummary;
}

const stem = (path: string) => path.split('/').pop()!.replace(/\.png$/, '');

const t = suite('shard');

t.before(async () => {
  await gpu();
  const r = new Rng(21);
  await writeRoutingWeights(weights, cfg, 5, r);
  mkdirSync(join(dir, 'ir'));
  mkdirSync(join(dir, 'vi'));
  for (const name of NAMES) {
    await writeImage(join(dir, 'ir', `${name}.png`), Uint8Array.from(r.uniform(W * H, 0, 255)), W, H, 1);
    await writeImage(join(dir, 'vi', `${name}.png`), Uint8Array.from(r.uniform(W * H, 0, 255)), W, H, 1);
  }
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('three shards fuse every pair exactly once: the union is all pairs, the shards are disjoint', async () => {
  const shards: string[][] = [];
  for (let i = 0; i < SHARDS; i++) {
    const s = fuse('--shard', `${i}/${SHARDS}`);
    assert.is(s.fused, s.pairs, `shard ${i}: every pair of the shard fused`);
    shards.push(s.outputs.map(stem).sort());
  }
  assert.ok(shards.every((s) => s.length > 0), `every shard has work: ${JSON.stringify(shards)}`);
  for (let i = 0; i < SHARDS; i++) {
    assert.equal(shards[i], NAMES.filter((n) => shardOf(n, SHARDS) === i).sort(), `shard ${i} is the FNV-1a split`);
    for (let j = i + 1; j < SHARDS; j++) assert.equal(shards[i].filter((n) => shards[j].includes(n)), [], `shards ${i} and ${j} are disjoint`);
  }
  assert.equal(shards.flat().sort(), [...NAMES].sort(), 'the union is every pair');
  for (const name of NAMES) {
    const img = await readImage(join(dir, 'out', `${name}.png`));
    assert.equal([img.width, img.height], [W, H]);
  }
});

t('--skip-existing keeps complete outputs (same mtime) and redoes a missing and a truncated one', async () => {
  const out = (n: string) => join(dir, 'out', `${n}.png`);
  const old = new Date('2020-01-01T00:00:00Z');
  for (const n of NAMES) utimesSync(out(n), old, old);
  const [truncated, missing] = ['road_42', 'b'];
  const bytes = readFileSync(out(truncated));
  writeFileSync(out(truncated), bytes.subarray(0, bytes.length >> 1));
  utimesSync(out(truncated), old, old);
  unlinkSync(out(missing));

  const s = fuse('--skip-existing');
  assert.is(s.pairs, NAMES.length);
  assert.is(s.skipped, NAMES.length - 2);
  assert.equal(s.outputs.map(stem).sort(), [missing, truncated].sort(), 'only the missing and the truncated output are redone');
  for (const n of NAMES) {
    const redone = n === missing || n === truncated;
    assert.is(statSync(out(n)).mtimeMs === old.getTime(), !redone, `${n}: ${redone ? 'rewritten' : 'untouched'}`);
    const img = await readImage(out(n));
    assert.equal([img.width, img.height], [W, H], `${n} decodes`);
  }
  // A shard with --skip-existing after everything is done: nothing to do.
  const again = fuse('--shard', `1/${SHARDS}`, '--skip-existing');
  assert.is(again.fused, 0);
  assert.is(again.skipped, again.pairs);
});

t.run();
