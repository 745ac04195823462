/**
 * The kernel-program description (src/kernels/program.ts): generated bindings, uniform struct layout and packing,
 * flat grids, chunking.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from '../helpers/gpu.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { Program, flatGrid, forEachChunk } from '../../src/kernels/program.ts';

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

t.run();
