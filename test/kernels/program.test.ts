/**
 * The kernel-program description (src/kernels/program.ts): generated bindings, uniform struct layout and packing,
 * flat grids, chunking.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { Program, checkShaderKeysForTests, flatGrid, forEachChunk, program, type ProgramSpec } from '../../src/kernels/program.ts';
import { unaryMapKernel } from '../../src/kernels/elementwise.ts';

const t = suite('program');

t('uniform struct: fields packed at WGSL uniform offsets (vec4 and arrays 16-byte aligned)', () => {
  const p = new Program({
    name: 'layout',
    outputs: { O: 'f32' },
    uniforms: { a: 'u32', b: 'f32', v: 'vec4u', c: 'i32', arr: 'vec4f[2]', d: 'u32' },
    workgroupSize: 1,
    body: 'O[0] = 0.0;',
  });
  assert.match(p.code, 'struct P { a: u32, b: f32, v: vec4u, c: i32, arr: array<vec4f, 2>, d: u32 }');
  const bytes = p.pack({ a: 7, b: 1.5, v: [1, 2, 3, 4], c: -2, arr: [0.5, 0, 0, 0, 9], d: 3 });
  // a 0, b 4, v 16..32, c 32, arr 48..80, d 80; the struct rounds up to 96.
  assert.is(bytes.byteLength, 96);
  const view = new DataView(bytes.buffer);
  assert.is(view.getUint32(0, true), 7);
  assert.is(view.getFloat32(4, true), 1.5);
  assert.equal([16, 20, 24, 28].map((o) => view.getUint32(o, true)), [1, 2, 3, 4]);
  assert.is(view.getInt32(32, true), -2);
  assert.is(view.getFloat32(48, true), 0.5);
  assert.is(view.getFloat32(64, true), 9);
  assert.is(view.getUint32(80, true), 3);
});

t('binding order: inputs, then outputs, then the uniforms; a missing binding or field is named', async () => {
  await gpu();
  const p = new Program({
    name: 'axpy',
    inputs: { X: 'f32', Y: 'f32' },
    outputs: { O: 'f32' },
    uniforms: { n: 'u32', a: 'f32' },
    workgroupSize: 64,
    flat: true,
    body: 'if (i < p.n) { O[i] = p.a * X[i] + Y[i]; }',
  });
  assert.match(p.code, '@group(0) @binding(0) var<storage, read> X: array<f32>;');
  assert.match(p.code, '@group(0) @binding(2) var<storage, read_write> O: array<f32>;');
  assert.match(p.code, '@group(0) @binding(3) var<uniform> p: P;');
  const x = Tensor.fromArray([1, 2, 3, 4, 5], [5]);
  const y = Tensor.fromArray([10, 20, 30, 40, 50], [5]);
  const o = Tensor.zeros([5]);
  p.dispatchFlat(5, { X: x, Y: y, O: o }, { n: 5, a: 2 });
  assert.equal([...(await o.data())], [12, 24, 36, 48, 60]);
  assert.throws(() => p.dispatchFlat(5, { X: x, O: o }, { n: 5 }), /binding 'Y' is missing/);
  assert.throws(() => p.pack({ m: 1 }), /no uniform field 'm'/);
  for (const u of [x, y, o]) u.dispose();
});

t('flat grids stay within 65535 workgroups per dimension and cover the count', () => {
  for (const count of [1, 65535, 65536, 200001, 65535 * 3 + 1]) {
    const [x, y] = flatGrid(count);
    assert.ok(x <= 65535 && x * y >= count && x * (y - 1) < count, `count ${count}: ${x}×${y}`);
  }
});

t('forEachChunk covers [0, n) with aligned chunks of at most one binding', async () => {
  const e = await gpu();
  e.rt.bindingLimitForTests = 4096;
  try {
    const seen: Array<[number, number]> = [];
    forEachChunk(2500, (off, n) => seen.push([off, n]));
    assert.equal(seen, [[0, 1024], [1024, 1024], [2048, 452]]);
  } finally {
    e.rt.bindingLimitForTests = null;
  }
});

t('a shader key names one WGSL text: a second text under a key is refused by programs and by the pipeline cache', async () => {
  const e = await gpu();
  const spec = (body: string): ProgramSpec => ({ name: 'key_guard', outputs: { O: 'f32' }, workgroupSize: 1, body });
  new Program({ ...spec('O[0] = 1.0;'), key: 'key_guard one' });
  new Program({ ...spec('O[0] = 1.0;'), key: 'key_guard one' }); // the same text again is fine
  assert.throws(() => new Program({ ...spec('O[0] = 2.0;'), key: 'key_guard one' }), /shader key 'key_guard one' already names another WGSL text/);
  // program(): a key that misses a parameter of the code; the tests rebuild at every use, so the second use fails.
  let value = 1;
  const make = () => spec(`O[0] = ${value}.0;`);
  checkShaderKeysForTests(true);
  program('key_guard two', make);
  value = 2;
  assert.throws(() => program('key_guard two', make), /shader key 'key_guard two' already names another WGSL text/);
  // The pipeline cache keeps each key's text and refuses another.
  const code = new Program({ ...spec('O[0] = 3.0;'), key: 'key_guard three' }).code;
  await e.rt.pipelines.get('key_guard three', code, 'key_guard');
  assert.throws(() => e.rt.pipelines.get('key_guard three', code.replace('3.0', '4.0'), 'key_guard'), /shader key 'key_guard three' was compiled from another WGSL text/);
});

t('program() builds the WGSL once per key (outside the tests\' check); dispatches of one text share one pipeline', async () => {
  const e = await gpu();
  let built = 0;
  const make = (): ProgramSpec => (built++, { name: 'built_once', outputs: { O: 'f32' }, workgroupSize: 1, body: 'O[0] = 5.0;' });
  checkShaderKeysForTests(false);
  try {
    const first = program('built_once', make);
    assert.is(program('built_once', make), first, 'the same program');
    assert.is(built, 1, 'built once');
  } finally {
    checkShaderKeysForTests(true);
  }
  // One expression under two labels: one key, one pipeline, each label counted.
  const x = Tensor.fromArray([1, 2, 3], [3]);
  unaryMapKernel('x * 3.5', x, 0, 0, 'label_one').dispose();
  const compiled = e.rt.pipelines.compiled;
  const before = e.rt.dispatchesByLabel.get('label_two') ?? 0;
  const y = unaryMapKernel('x * 3.5', x, 0, 0, 'label_two');
  assert.equal([...(await y.data())], [3.5, 7, 10.5]);
  assert.is(e.rt.pipelines.compiled, compiled, 'no new pipeline');
  assert.is(e.rt.dispatchesByLabel.get('label_two'), before + 1, 'the dispatch carries its label');
  x.dispose();
  y.dispose();
});

t.run();
