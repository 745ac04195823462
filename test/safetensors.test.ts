/** safetensors reader/writer: files written by the Python package, round trips, and corrupt files (no GPU). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';
import { Rng } from '../src/util/rng.ts';
import { assertThrowsError } from './helpers/throws.ts';

const test = suite('safetensors');
const DTYPES_FIXTURE = resolve(import.meta.dirname, 'fixtures/safetensors-dtypes.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'safetensors-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Bitwise equality, so -0 vs 0 and NaN are checked too. */
function assertSameBits(actual: Float32Array, expected: Float32Array, what: string) {
  assert.is(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++)
    if (a[i] !== e[i]) assert.unreachable(`${what}[${i}]: got ${actual[i]} (0x${a[i].toString(16)}), expected ${expected[i]} (0x${e[i].toString(16)})`);
}

function randomData(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 8 - 4);
  return out;
}

/** A file with a hand-made header (object or raw text) and data section. */
function craft(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: number): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

function assertThrowsNaming(fn: () => unknown, file: string, pattern: RegExp) {
  const msg = assertThrowsError(fn, pattern).message;
  assert.ok(msg.includes(file), `message names the file: ${msg}`);
}

test('reads every float dtype written by the Python package, with metadata', () => {
  const f = readSafetensors(DTYPES_FIXTURE);
  assert.equal(f.metadata, { source: 'make_fixtures.py: same values in four dtypes' });
  const f32 = f.tensors.get('f32')!;
  assert.is(f32.dtype, 'F32');
  assert.equal(f32.shape, [11, 20]);
  assert.is(f.tensors.get('f16')!.dtype, 'F16');
  assert.is(f.tensors.get('bf16')!.dtype, 'BF16');
  assertSameBits(f.tensors.get('f64')!.data, f32.data, 'F64 → F32');
  assertSameBits(f.tensors.get('f16')!.data, f.tensors.get('f16_as_f32')!.data, 'F16 → F32');
  assertSameBits(f.tensors.get('bf16')!.data, f.tensors.get('bf16_as_f32')!.data, 'BF16 → F32');
  assert.equal(f.tensors.get('scalar'), { dtype: 'F32', shape: [], data: Float32Array.of(3.25) });
  assert.equal(f.tensors.get('empty')!.shape, [0, 3]);
  assert.is(f.tensors.get('empty')!.data.length, 0);
});

test('reads the MoE-Fusion parity fixture written by the Python reference', () => {
  const path = resolve(import.meta.dirname, '../fixtures/moe-fusion-small.safetensors');
  const f = readSafetensors(path);
  assert.is(f.tensors.size, 232);
  assert.equal(JSON.parse(f.metadata['moefusion.config']).local_grid, [6, 8]);
  assert.equal(f.tensors.get('encoder.moe_fg.w_gate')!.shape, [1536, 4]);
  assert.equal(f.tensors.get('grad.DecoderMoE.experts.3.decoder_Conv2.weight')!.shape, [64, 160, 3, 3]);
  assert.equal([...f.tensors.get('encoder.moe_fg.std')!.data], [1]);
});

test('F16 writing rounds like PyTorch (ties to even, subnormals, overflow to infinity)', () => {
  const src = readSafetensors(DTYPES_FIXTURE);
  const path = join(dir, 'f16.safetensors');
  writeSafetensors(path, { x: { shape: [11, 20], data: src.tensors.get('f32')!.data } }, { dtype: 'F16' });
  const back = readSafetensors(path).tensors.get('x')!;
  assert.is(back.dtype, 'F16');
  assertSameBits(back.data, src.tensors.get('f16_as_f32')!.data, 'F32 → F16 → F32');
});

test('F32 round trip keeps values, shapes, order and metadata; header aligned to 8 bytes', () => {
  const rng = new Rng(3);
  const tensors = {
    'encoder.Conv1.conv_r.weight': { shape: [16, 1, 3, 3], data: randomData(rng, 144) },
    'b': { shape: [7], data: randomData(rng, 7) },
    'scalar': { shape: [], data: Float32Array.of(-0) },
    'empty': { shape: [0, 5], data: new Float32Array(0) },
    'odd': { shape: [1, 3, 1], data: Float32Array.of(Infinity, -Infinity, 1e-45) },
  };
  const path = join(dir, 'f32.safetensors');
  writeSafetensors(path, tensors, { metadata: { format: 'pt', note: 'ünïcode ✓' } });
  const f = readSafetensors(path);
  assert.equal(f.metadata, { format: 'pt', note: 'ünïcode ✓' });
  assert.equal([...f.tensors.keys()], Object.keys(tensors));
  for (const [name, t] of Object.entries(tensors)) {
    const r = f.tensors.get(name)!;
    assert.is(r.dtype, 'F32');
    assert.equal(r.shape, t.shape);
    assertSameBits(r.data, t.data, name);
  }
  const headerLength = Number(readFileSync(path).readBigUInt64LE(0));
  assert.is(headerLength % 8, 0);
});

test('F16 round trip of random data stays within half precision', () => {
  const rng = new Rng(5);
  const data = new Float32Array(1000);
  for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 100;
  const path = join(dir, 'f16-random.safetensors');
  writeSafetensors(path, { x: { shape: [10, 100], data } }, { dtype: 'F16' });
  const back = readSafetensors(path).tensors.get('x')!.data;
  for (let i = 0; i < data.length; i++) {
    const err = Math.abs(back[i] - data[i]);
    // half has an 11-bit significand: relative error ≤ 2^-11 for normals, absolute 2^-25 near zero
    assert.ok(err <= Math.max(Math.abs(data[i]) * 2 ** -11, 2 ** -25), `x[${i}]: ${data[i]} → ${back[i]}`);
  }
});

test('writing replaces the file atomically and leaves no temporary files', () => {
  const sub = mkdtempSync(join(dir, 'atomic-'));
  const path = join(sub, 'w.safetensors');
  writeSafetensors(path, { a: { shape: [2], data: Float32Array.of(1, 2) } });
  writeSafetensors(path, { b: { shape: [1], data: Float32Array.of(3) } });
  assert.equal([...readSafetensors(path).tensors.keys()], ['b']);
  assert.equal(readdirSync(sub), ['w.safetensors']);
  const missingDir = join(sub, 'no-such-dir', 'x.safetensors');
  assertThrowsNaming(() => writeSafetensors(missingDir, { a: { shape: [1], data: Float32Array.of(1) } }), missingDir, /cannot write/);
  assert.equal(readdirSync(sub), ['w.safetensors']);
});

test('writing refuses data that does not fill the shape', () => {
  const path = join(dir, 'bad-shape.safetensors');
  assertThrowsNaming(() => writeSafetensors(path, { a: { shape: [2, 3], data: new Float32Array(5) } }), path, /needs 6 values, got 5/);
});

test('corrupt files give errors that name the file and the problem', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eight = new Uint8Array(8);
  const cases: Array<[string, RegExp]> = [
    [craft('empty-header.safetensors', ''), /not valid JSON/],
    [craft('long-header.safetensors', { a: ok }, eight, 10_000), /truncated file or bad header/],
    [craft('not-json.safetensors', '{"a": ', eight), /not valid JSON/],
    [craft('array.safetensors', '[1,2]'), /expected a JSON object/],
    [craft('cut-data.safetensors', { a: ok }, new Uint8Array(5)), /out of range.*truncated file/],
    [craft('past-end.safetensors', { a: { ...ok, data_offsets: [8, 16] } }, eight), /out of range/],
    [craft('reversed.safetensors', { a: { ...ok, data_offsets: [8, 0] } }, eight), /out of range/],
    [craft('i64.safetensors', { a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, eight), /unsupported dtype I64/],
    [craft('size.safetensors', { a: { ...ok, shape: [3] } }, new Uint8Array(12)), /8 bytes for F32 \[3\] \(expected 12\)/],
    [craft('shape.safetensors', { a: { ...ok, shape: [-2] } }, eight), /invalid shape/],
    [craft('meta.safetensors', { __metadata__: { n: 3 }, a: ok }, eight), /__metadata__\.n is not a string/],
    [craft('overlap.safetensors', { a: ok, b: { ...ok, data_offsets: [4, 12] } }, new Uint8Array(12)), /overlap/],
  ];
  for (const [path, pattern] of cases) assertThrowsNaming(() => readSafetensors(path), path, pattern);

  const short = join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  assertThrowsNaming(() => readSafetensors(short), short, /truncated file: 3 bytes/);
  const missing = join(dir, 'missing.safetensors');
  assertThrowsNaming(() => readSafetensors(missing), missing, /cannot open/);
});

test.run();
