/**
 * The choice between the direct and the Winograd convolution (src/kernels/conv2d-choice.ts): the nearest measured
 * shape of the same kind decides, shapes far from every entry and adapters without subgroups get the direct kernel,
 * forcing overrides, tables are checked when read; and with the built-in lavapipe table the wide MoE-Fusion layers
 * take Winograd while the narrow ones stay direct.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { builtInTable, lookUp, parseConvTable, type ConvTable } from '../../src/kernels/conv2d-choice.ts';
import { convAlgorithm, engineVariant, subgroupSize, variantFromEnvironment, type KernelVariant } from '../../src/kernels/variant.ts';
import { runConvTableBenchmark } from '../../src/bench/conv-table.ts';
import { FusionNet } from '../../src/model/fusion-net.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/util/rng.ts';
import { recordDispatches } from '../helpers/dispatches.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const t = suite('conv2d-choice');

const table: ConvTable = {
  adapter: 'test',
  date: '2026-12-07',
  entries: [
    { ci: 64, co: 64, pixels: 1 << 16, pass: 'forward', algorithm: 'winograd6', speedup: 2 },
    { ci: 16, co: 16, pixels: 1 << 16, pass: 'forward', algorithm: 'direct', speedup: 1 },
    { ci: 64, co: 64, pixels: 1 << 16, pass: 'input', algorithm: 'winograd4', speedup: 1.5 },
  ],
};

t('the nearest entry of the same kind decides; far shapes get the direct kernel', () => {
  assert.is(lookUp(table, { ci: 64, co: 64, pixels: 1 << 16, pass: 'forward' }), 'winograd6');
  assert.is(lookUp(table, { ci: 48, co: 64, pixels: 1 << 17, pass: 'forward' }), 'winograd6', 'near 64→64');
  assert.is(lookUp(table, { ci: 20, co: 16, pixels: 1 << 16, pass: 'forward' }), 'direct', 'near 16→16');
  assert.is(lookUp(table, { ci: 64, co: 64, pixels: 1 << 16, pass: 'input' }), 'winograd4', 'each pass has its own entries');
  assert.is(lookUp(table, { ci: 64, co: 64, pixels: 1 << 8, pass: 'forward' }), 'direct', '256 times fewer pixels: too far');
  assert.is(lookUp(table, { ci: 64, co: 64, pixels: 1 << 26, pass: 'forward' }), 'winograd6', '1024 times the pixels: still Winograd');
  assert.is(lookUp(table, { ci: 512, co: 512, pixels: 1 << 16, pass: 'forward' }), 'direct', '8 times the channels: too far');
  assert.is(lookUp({ ...table, entries: [] }, { ci: 64, co: 64, pixels: 1 << 16, pass: 'forward' }), 'direct', 'an empty table');
});

t('tables are checked when read: a clear error names the file', () => {
  assert.equal(parseConvTable(JSON.stringify(table), 't.json').entries.length, 3);
  assert.throws(() => parseConvTable('{', 'bad.json'), /bad\.json: not JSON/);
  assert.throws(() => parseConvTable('{"entries": 3}', 'bad.json'), /bad\.json: a convolution table needs "entries"/);
  const wrong = { ...table, entries: [{ ...table.entries[0], algorithm: 'fft' }] };
  assert.throws(() => parseConvTable(JSON.stringify(wrong), 'bad.json'), /bad\.json: entry 0 is not/);
});

t('convAlgorithm: the table, forcing, and the direct kernel without subgroups', async () => {
  await gpu();
  const v: KernelVariant = { ...engineVariant(), conv: 'auto', convTable: table };
  const wide = { ci: 64, co: 64, pixels: 1 << 16, pass: 'forward' as const };
  assert.is(convAlgorithm(wide, v), subgroupSize() ? 6 : 0);
  assert.is(convAlgorithm(wide, { ...v, subgroups: false }), 0, 'no subgroups: direct');
  assert.is(convAlgorithm(wide, { ...v, subgroups: false, conv: 'winograd4' }), 4, 'forcing wins, also without subgroups');
  assert.is(convAlgorithm(wide, { ...v, conv: 'direct' }), 0);
  assert.is(convAlgorithm(wide, { ...v, convTable: null }), 0, 'no table: direct');
});

t('a measured table (bench --kernels) is written, read back through MOEFUSION_CONV_TABLE and used; a broken one is refused by name', async () => {
  await gpu();
  const dir = mkdtempSync(join(tmpdir(), 'conv-table-'));
  try {
    const file = await runConvTableBenchmark({ width: 16, height: 12, runs: 1, out: dir }, () => {});
    const written = parseConvTable(readFileSync(file, 'utf8'), file);
    assert.is(written.entries.length, 30, '10 convolutions × 3 passes');
    for (const pass of ['forward', 'input', 'weight']) assert.is(written.entries.filter((e) => e.pass === pass).length, 10, pass);
    const mine = join(dir, 'mine.json');
    writeFileSync(mine, JSON.stringify(table));
    process.env.MOEFUSION_CONV_TABLE = mine;
    assert.is(convAlgorithm({ ci: 64, co: 64, pixels: 1 << 16, pass: 'input' }, variantFromEnvironment()), subgroupSize() ? 4 : 0, 'the file decides');
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"entries": [{"ci": 0}]}');
    process.env.MOEFUSION_CONV_TABLE = broken;
    assert.throws(() => variantFromEnvironment(), /broken\.json: entry 0 is not/);
  } finally {
    delete process.env.MOEFUSION_CONV_TABLE;
    rmSync(dir, { recursive: true, force: true });
  }
});

t('lavapipe: the built-in table sends the wide MoE-Fusion layers to Winograd F(6×6) and keeps the narrow ones direct', async () => {
  await gpu();
  const builtIn = builtInTable();
  if (!builtIn || !subgroupSize()) {
    console.log('  (skipped: not lavapipe with subgroups)');
    return;
  }
  const px = 640 * 480;
  for (const pass of ['forward', 'input', 'weight'] as const) {
    assert.is(convAlgorithm({ ci: 160, co: 64, pixels: 2 * px, pass }), 6, `160→64 ${pass}`);
    assert.is(convAlgorithm({ ci: 64, co: 32, pixels: 2 * px, pass }), pass === 'weight' ? 4 : 6, `64→32 ${pass}`);
    for (const [ci, co] of [[1, 16], [16, 16], [48, 16], [16, 8], [8, 16], [16, 1]]) assert.is(convAlgorithm({ ci, co, pixels: px, pass }), 0, `${ci}→${co} ${pass}`);
  }
  // The training shape 4×128×128.
  assert.is(convAlgorithm({ ci: 160, co: 64, pixels: 8 * 128 * 128, pass: 'forward' }), 6);
});

t('lavapipe: inference runs the wide layers in Winograd and the narrow ones in 8-channel direct blocks, whose kernel compiles 4 times faster than the 16-channel one', async () => {
  const { rt } = await gpu();
  if (!builtInTable() || !subgroupSize()) {
    console.log('  (skipped: not lavapipe with subgroups)');
    return;
  }
  const net = FusionNet.init(undefined, 3);
  const rng = new Rng(5);
  const [H, W] = [120, 160];
  const image = () => Tensor.fromArray(rng.uniform(H * W, 0, 1), [1, 1, H, W]);
  const [ir, vis] = [image(), image()];
  const { result, specs } = recordDispatches(rt, () => net.forward(ir, vis, null).fused);
  result.dispose();
  // Direct 3×3 keys read `conv2d 3 <flip> <output channels per invocation> …`.
  const blocks = new Set(specs.filter((s) => s.key.startsWith('conv2d 3 ')).map((s) => Number(s.key.split(' ')[3])));
  assert.ok(specs.some((s) => s.label === 'conv2d_winograd_multiply'), 'the wide layers run Winograd');
  assert.ok(blocks.size > 0, 'the narrow layers run the direct kernel');
  assert.ok([...blocks].every((b) => b <= 8), `direct blocks ${[...blocks].join(', ')}: none of 16 channels`);
  for (const x of [ir, vis]) x.dispose();
  net.dispose();
});

t.run();
