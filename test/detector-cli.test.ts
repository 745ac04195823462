/**
 * The detector end to end as a user meets it: a synthetic dataset in M3FD's layout (Ir/, Vis/, Annotation/ VOC XML)
 * trains the fusion network jointly with the detectors (`train --attention detector`), resumes, and the weights then
 * serve `detect` (boxes, pictures, mAP) and `fuse --attention detector`; misuse gives one clear line.
 */
import { suite } from 'uvu';
import { cli, assertFails } from './helpers/cli.ts';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { readImage } from '../src/io/image.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-detector-'));
const data = join(dir, 'data');
const run = join(dir, 'run');

const TRAIN = ['train', '--data', data, '--out', run, '--attention', 'detector', '--batch', '2', '--crop', '48', '--gate-grids', '8x6,4x3', '--val-fraction', '0.34', '--checkpoint-every', '2', '--lr', '1e-3'];

const t = suite('detector-cli');

t('synth → train --attention detector (M3FD layout) → resume: detection losses, mAP in validation, detector in the weights', () => {
  const s = cli('synth', '--out', data, '--count', '6', '--size', '64x64', '--seed', '4');
  assert.is(s.code, 0, s.stderr);
  assert.ok(existsSync(join(data, 'Annotation', '00000.xml')));
  const r = cli(...TRAIN, '--steps', '2');
  assert.is(r.code, 0, r.stderr);
  const r2 = cli(...TRAIN, '--steps', '4', '--resume');
  assert.is(r2.code, 0, r2.stderr);
  const log = readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = log.filter((l) => l.total !== undefined);
  assert.equal(steps.map((l) => l.step), [1, 2, 3, 4]);
  for (const l of steps) assert.ok(Number.isFinite(l.detection) && l.detection > 0, `step ${l.step} logs its detection loss`);
  const validations = log.filter((l) => l.validation);
  assert.ok(validations.length >= 1);
  for (const v of validations) assert.ok(v.validation.mAP50 >= 0 && v.validation.mAP50 <= 1 && v.validation.mAP >= 0, JSON.stringify(v.validation));
  const weights = readSafetensors(join(run, 'weights.safetensors'));
  assert.equal(JSON.parse(weights.metadata['moefusion.detector']).classes, ['People', 'Car', 'Bus', 'Motorcycle', 'Lamp', 'Truck']);
  assert.ok(weights.tensors.has('detector.interaction.conv.weight'));
  assert.ok(weights.tensors.has('detector.ir.attention.bn2.running_var'));
  const ck = readSafetensors(join(run, 'checkpoint.safetensors'));
  assert.ok(ck.tensors.has('buffer/detector.vis.attention.bn1.running_mean') && ck.tensors.has('adam.m/detector.vis.head.out.weight'));
});

t('detect: boxes JSON, one picture per pair, mAP per class against the labels', async () => {
  const out = join(dir, 'detect');
  const r = cli('detect', '--data', data, '--weights', join(run, 'weights.safetensors'), '--out', out, '--score', '0.2');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /AP50/);
  const json = JSON.parse(readFileSync(join(out, 'detections.json'), 'utf8'));
  assert.equal(Object.keys(json.images).sort(), ['00000', '00001', '00002', '00003', '00004', '00005']);
  for (const v of Object.values(json.images) as Array<Record<string, Array<{ score: number; x0: number; x1: number }>>>)
    for (const k of ['vis', 'ir', 'both']) for (const b of v[k]) assert.ok(b.score >= 0.2 && b.x1 >= b.x0);
  const maps = JSON.parse(readFileSync(join(out, 'map.json'), 'utf8'));
  assert.ok(maps.both.map50 >= 0 && maps.both.map50 <= 1);
  const pic = await readImage(join(out, '00000.png'));
  assert.is(pic.height, 64);
  assert.ok(pic.width >= 3 * 64);
});

t('fuse --attention detector uses the detectors; weights without them are refused clearly', async () => {
  const ir = join(data, 'Ir', '00001.png');
  const vi = join(data, 'Vis', '00001.png');
  const weights = join(run, 'weights.safetensors');
  const f = cli('fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'fused-det.png'), '--weights', weights, '--attention', 'detector');
  assert.is(f.code, 0, f.stderr);
  const n = cli('fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'fused-none.png'), '--weights', weights, '--attention', 'none');
  assert.is(n.code, 0, n.stderr);
  const [a, b] = [await readImage(join(dir, 'fused-det.png')), await readImage(join(dir, 'fused-none.png'))];
  assert.is(a.width, 64);
  assert.ok(a.data.some((v, i) => v !== b.data[i]), 'the attention changes the fusion');
  assertFails(cli('fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'x.png'), '--attention', 'detector'), /carries no detector/);
  assertFails(cli('detect', '--data', data, '--out', join(dir, 'd2')), /carries no detector/);
});

t('train --attention detector without labels, and a bad --attention, fail with one line', () => {
  const bare = join(dir, 'bare');
  mkdirSync(join(bare, 'ir'), { recursive: true });
  mkdirSync(join(bare, 'vi'), { recursive: true });
  for (const [m, from] of [['ir', 'Ir'], ['vi', 'Vis']]) for (const f of readdirSync(join(data, from)).slice(0, 2)) copyFileSync(join(data, from, f), join(bare, m, f));
  assertFails(cli('train', '--data', bare, '--out', join(dir, 'r2'), '--attention', 'detector', '--steps', '1'), /needs boxes/);
  assertFails(cli('train', '--data', data, '--out', join(dir, 'r3'), '--attention', 'yolo', '--steps', '1'), /--attention yolo/);
});

t.after(() => rmSync(dir, { recursive: true, force: true }));

t.run();
