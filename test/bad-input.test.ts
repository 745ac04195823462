/**
 * Bad input, as a hostile tester tries it: every case of the reliability issue for `fuse`, `detect`, `synth`,
 * `bench` and the library, each with its exit code (0 ok, 1 bad input, 2 usage, 3 resources), one `moefusion:` line
 * naming the file or argument, and nothing left behind (no output file, no new folder, inputs untouched). The CLI
 * runs in this process through its main(); two real processes check concurrent writes into one folder.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import { gpu } from './helpers/gpu.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { runInProcess as run } from './helpers/cli.ts';
import { EXIT_GPU, EXIT_USAGE, EXIT_USER } from '../src/cli/errors.ts';
import { configToMetadata } from '../src/model/config.ts';
import { initParameters, disposeParameters } from '../src/model/parameters.ts';
import { saveWeights } from '../src/model/weights-file.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';
import { decodeImage, writeImage } from '../src/io/image.ts';
import { Fuser } from '../src/model/fuser.ts';
import { InputError } from '../src/io/pixels.ts';
import { ImageError } from '../src/io/image-types.ts';
import { shutdownEngine } from '../src/tensor/engine.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-bad-'));
const cfg = SMALL_GATES;
const weights = join(dir, 'w.safetensors');
const ir = join(dir, 'data/ir/a.png');
const vi = join(dir, 'data/vi/a.png');
const W = 24;
const H = 20;

/** A weights file derived from the good one. */
function variant(name: string, edit: (tensors: Record<string, { shape: number[]; data: Float32Array }>, meta: Record<string, string>) => void): string {
  const file = readSafetensors(weights);
  const tensors = Object.fromEntries([...file.tensors].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
  const meta = { ...file.metadata };
  edit(tensors, meta);
  const path = join(dir, `${name}.safetensors`);
  writeSafetensors(path, tensors, { metadata: meta });
  return path;
}

/** A PNG whose header says width×height, with almost no pixel data: only the header is ever read. */
function hugePngHeader(path: string, width: number, height: number): void {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit gray
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  writeFileSync(path, Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(width + 1))), chunk('IEND', Buffer.alloc(0))]));
}

async function pair(folder: string, name: string, w = W, h = H, seed = 1): Promise<void> {
  const r = new Rng(seed);
  mkdirSync(join(folder, 'ir'), { recursive: true });
  mkdirSync(join(folder, 'vi'), { recursive: true });
  await writeImage(join(folder, 'ir', `${name}.png`), Uint8Array.from(r.uniform(w * h, 0, 255)), w, h, 1);
  await writeImage(join(folder, 'vi', `${name}.png`), Uint8Array.from(r.uniform(w * h * 3, 0, 255)), w, h, 3);
}

const t = suite('bad-input');

t.before(async () => {
  await gpu();
  const params = initParameters(cfg, 3);
  await saveWeights(weights, params, cfg);
  disposeParameters(params);
  await pair(join(dir, 'data'), 'a');
  await pair(join(dir, 'mismatch'), 'm');
  await writeImage(join(dir, 'mismatch/vi/m.png'), new Uint8Array(10 * 10), 10, 10, 1);
  await pair(join(dir, 'tiny'), 't', 1, 8);
  mkdirSync(join(dir, 'huge/ir'), { recursive: true });
  mkdirSync(join(dir, 'huge/vi'), { recursive: true });
  hugePngHeader(join(dir, 'huge/ir/h.png'), 16000, 16000);
  hugePngHeader(join(dir, 'huge/vi/h.png'), 16000, 16000);
  mkdirSync(join(dir, 'nomatch/ir'), { recursive: true });
  mkdirSync(join(dir, 'nomatch/vi'), { recursive: true });
  await writeImage(join(dir, 'nomatch/ir/x.png'), new Uint8Array(64), 8, 8, 1);
  await writeImage(join(dir, 'nomatch/vi/y.png'), new Uint8Array(64), 8, 8, 1);
});

t.after(() => {
  rmSync(dir, { recursive: true, force: true });
  shutdownEngine();
});

t('fuse: each bad input refused up front with its exit code, a message naming it, nothing left behind', async () => {
  const out = join(dir, 'out.png');
  const newDir = join(dir, 'never-made');
  const meta = (edit: (c: Record<string, unknown>) => void) => (_: unknown, m: Record<string, string>) => {
    const c = JSON.parse(m['moefusion.config'] ?? configToMetadata(cfg));
    edit(c);
    m['moefusion.config'] = JSON.stringify(c);
  };
  const w = {
    nan: variant('all-nan', (ts) => Object.values(ts).forEach((x) => x.data.fill(NaN))),
    inf: variant('one-inf', (ts) => (ts['encoder.Conv1.conv_r.weight'].data[5] = Infinity)),
    json: variant('bad-json', (_, m) => (m['moefusion.config'] = '{"k": ')),
    k9: variant('k9', meta((c) => (c.k = 9))),
    kTwo: variant('k-two', meta((c) => (c.k = 'two'))),
    negGrid: variant('neg-grid', meta((c) => (c.local_grid = [-6, 8]))),
    hugeGrid: variant('huge-grid', meta((c) => (c.global_grid = [100000, 100000]))),
    dup: variant('duplicate', (ts) => (ts['fusion_head.encoder.Conv1.conv_r.bias'] = ts['encoder.Conv1.conv_r.bias'])),
    detector: variant('stray-detector', (ts) => (ts['detector.vis.bogus.weight'] = { shape: [1], data: new Float32Array(1) })),
  };
  const cases: Array<[string, string[], number, RegExp, string[]]> = [
    ['--out is --ir', ['fuse', '--ir', ir, '--vi', vi, '--out', ir, '--weights', weights], EXIT_USER, /--out .*a\.png is an input/, []],
    ['--compare is --out', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--compare', out, '--weights', weights], EXIT_USER, /--compare .* same as --out/, [out]],
    ['--out folder is the --ir folder', ['fuse', '--ir', join(dir, 'data/ir'), '--vi', join(dir, 'data/vi'), '--out', join(dir, 'data/ir'), '--weights', weights], EXIT_USER, /--out .* is an input folder/, []],
    ['unknown --out extension', ['fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'out.foo'), '--weights', weights], EXIT_USER, /--out .*out\.foo: unknown image extension/, [join(dir, 'out.foo')]],
    ['--out is a folder', ['fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'data'), '--weights', weights], EXIT_USER, /--out .*data: is a folder/, []],
    ['bad --compare extension', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--compare', join(dir, 'c.txt'), '--weights', weights], EXIT_USER, /--compare .*c\.txt/, [out, join(dir, 'c.txt')]],
    ['--depth 16 as JPEG', ['fuse', '--ir', ir, '--vi', vi, '--out', join(dir, 'o.jpg'), '--depth', '16', '--weights', weights], EXIT_USER, /--depth 16 needs/, [join(dir, 'o.jpg')]],
    ['--depth 7', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--depth', '7', '--weights', weights], EXIT_USAGE, /--depth 7/, [out]],
    ['--shard 3/3', ['fuse', '--ir', join(dir, 'data/ir'), '--vi', join(dir, 'data/vi'), '--out', newDir, '--shard', '3/3', '--weights', weights], EXIT_USAGE, /--shard 3\/3/, [newDir]],
    ['--attention bogus', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--attention', 'bogus', '--weights', weights], EXIT_USAGE, /--attention bogus/, [out]],
    ['missing input', ['fuse', '--ir', join(dir, 'nope.png'), '--vi', vi, '--out', out, '--weights', weights], EXIT_USER, /--ir .*nope\.png: no such file/, [out]],
    ['pair sizes differ (header)', ['fuse', '--ir', join(dir, 'mismatch/ir'), '--vi', join(dir, 'mismatch/vi'), '--out', newDir, '--weights', weights], EXIT_USER, /m\.png is 24×20 but .*m\.png is 10×10/, [newDir]],
    ['folders with no matching names', ['fuse', '--ir', join(dir, 'nomatch/ir'), '--vi', join(dir, 'nomatch/vi'), '--out', newDir, '--weights', weights], EXIT_USER, /x|y|match/, [newDir]],
    ['tiny image', ['fuse', '--ir', join(dir, 'tiny/ir/t.png'), '--vi', join(dir, 'tiny/vi/t.png'), '--out', out, '--weights', weights], EXIT_USER, /1×8 is too small/, [out]],
    ['huge image (header only)', ['fuse', '--ir', join(dir, 'huge/ir'), '--vi', join(dir, 'huge/vi'), '--out', newDir, '--weights', weights], EXIT_GPU, /h\.png: 16000×16000 needs .* GiB/, [newDir]],
    ['--weights is a folder', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', dir], EXIT_USER, /--weights .*: is a folder/, [out]],
    ['all-NaN weights', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.nan], EXIT_USER, /all-nan\.safetensors: tensor .* holds NaN/, [out]],
    ['Inf in one tensor', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.inf], EXIT_USER, /one-inf\.safetensors: tensor encoder\.Conv1\.conv_r\.weight holds Infinity at element 5/, [out]],
    ['malformed config JSON', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.json], EXIT_USER, /bad-json\.safetensors: 'moefusion\.config' metadata is not valid JSON/, [out]],
    ['k 9', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.k9], EXIT_USER, /k9\.safetensors: 'moefusion\.config' k is 9/, [out]],
    ['k "two"', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.kTwo], EXIT_USER, /k-two\.safetensors: 'moefusion\.config' k is "two"/, [out]],
    ['negative gate grid', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.negGrid], EXIT_USER, /neg-grid\.safetensors: 'moefusion\.config' local_grid/, [out]],
    ['100000×100000 gate grid', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.hugeGrid], EXIT_USER, /huge-grid\.safetensors: 'moefusion\.config' global_grid/, [out]],
    ['duplicate tensor names', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.dup], EXIT_USER, /duplicate\.safetensors: tensor encoder\.Conv1\.conv_r\.bias appears twice/, [out]],
    ['stray detector tensor', ['fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', w.detector], EXIT_USER, /stray-detector\.safetensors: tensor detector\.vis\.bogus\.weight/, [out]],
    ['--backend null', ['--backend', 'null', 'fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', weights], EXIT_USAGE, /--backend null runs no GPU code/, [out]],
    ['--adapter that matches nothing', ['--adapter', 'nosuchgpu', 'fuse', '--ir', ir, '--vi', vi, '--out', out, '--weights', weights], EXIT_GPU, /no adapter's name contains "nosuchgpu"; available: /, [out]],
    ['detect without a detector', ['detect', '--ir', ir, '--vi', vi, '--out', newDir, '--weights', weights], EXIT_USER, /w\.safetensors.*(no detector|holds no detector)/, [newDir]],
    ['bench --sizes 64', ['bench', '--sizes', '64', '--no-torch', '--out', newDir], EXIT_USAGE, /--sizes 64: expected 2 positive integers/, [newDir]],
  ];
  const irBytes = readFileSync(ir);
  for (const [what, args, code, pattern, absent] of cases) {
    const started = performance.now();
    const r = await run(...args);
    assert.is(r.code, code, `${what}: exit code (stderr: ${r.err})`);
    const lines = r.err.trim().split('\n').filter(Boolean);
    assert.is(lines.length, 1, `${what}: one line of error, got: ${r.err}`);
    assert.match(lines[0], /^moefusion: /, what);
    assert.match(lines[0], pattern, what);
    for (const p of absent) assert.not.ok(existsSync(p), `${what}: ${p} must not exist`);
    assert.ok(readFileSync(ir).equals(irBytes), `${what}: the input is untouched`);
    assert.ok(performance.now() - started < 60_000, `${what}: refused quickly`);
  }
  assert.equal(readdirSync(dir).filter((n) => n.includes('.tmp')), [], 'no temporary files');
});

t('library: bad pixels, sizes, forms and attention maps are refused with InputError naming the image', async () => {
  const fuser = await Fuser.create({ weights });
  const n = W * H;
  const ok = () => new Float32Array(n).fill(0.5);
  const gray = (data: Float32Array, width = W, height = H) => ({ width, height, data });
  const withValue = (v: number) => {
    const d = ok();
    d[W + 3] = v;
    return gray(d);
  };
  const cases: Array<[string, () => Promise<unknown>, RegExp, (new (...a: never[]) => Error)?]> = [
    ['an Infinity pixel', () => fuser.fuse(withValue(Infinity), gray(ok())), /infrared: pixel \(3, 1\) is Infinity/],
    ['a NaN pixel', () => fuser.fuse(gray(ok()), withValue(NaN)), /visible: pixel \(3, 1\) is NaN/],
    ['a value above 1', () => fuser.fuse(withValue(1.5), gray(ok())), /pixel \(3, 1\) is 1\.5; gray values must lie in \[0,1\]/],
    ['0..255 values', () => fuser.fuse(withValue(200), gray(ok())), /8-bit values\? divide by 255/],
    ['width 0', () => fuser.fuse(gray(new Float32Array(0), 0, H), gray(ok())), /infrared: width and height must be positive integers, got 0×20/],
    ['a NaN attention map', () => fuser.fuse(gray(ok()), gray(ok()), { attention: new Float32Array(n).fill(NaN) }), /attention: pixel \(0, 0\) is NaN/],
    ['an attention map of the wrong size', () => fuser.fuse(gray(ok()), gray(ok()), { attention: new Float32Array(7) }), /attention has 7 values, expected 24×20 = 480/],
    ['RGBA bytes of the wrong length', () => fuser.fuse({ width: W, height: H, data: new Uint8ClampedArray(10) }, gray(ok())), /infrared: 10 bytes; ImageData-like input needs 24×20×4/],
    ['bytes that are no image', () => fuser.fuse(Buffer.from('hello'), gray(ok())), /infrared: cannot be read as an image/, ImageError],
    ['sizes differ', () => fuser.fuse(gray(ok()), gray(new Float32Array(W * 10).fill(0.5), W, 10)), /infrared 24×20 and visible 24×10 differ in size/],
    ['a missing file', () => fuser.fuse(join(dir, 'nope.png'), gray(ok())), /nope\.png: file not found/, ImageError],
    ['a sharp raw object with 5 channels', () => fuser.fuse({ data: new Uint8Array(5 * n), info: { width: W, height: H, channels: 5 } }, gray(ok())), /infrared: 5 channels/],
  ];
  for (const [what, call, pattern, cls = InputError] of cases) {
    try {
      await call();
      assert.unreachable(`${what} must be refused`);
    } catch (e) {
      assert.instance(e, cls, `${what}: ${(e as Error).message}`);
      assert.match((e as Error).message, pattern, what);
    }
  }
  // The same image as a file path, encoded bytes, sharp's raw output and ImageData-like RGBA fuses identically.
  const bytes = readFileSync(vi);
  const img = await decodeImage(bytes, vi);
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) rgba.set([img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2], 255], 4 * i);
  const results = await Promise.all([vi, bytes, { data: img.data, info: { width: W, height: H, channels: 3 } }, { width: W, height: H, data: rgba }].map((v) => fuser.fuse(ir, v as never)));
  for (const r of results.slice(1)) assert.equal([...r.data], [...results[0].data], 'same fused values from every input form');
  fuser.dispose();
});

t('two fuse processes writing into the same folder at once leave only complete images', async () => {
  const data = join(dir, 'many');
  for (let k = 0; k < 6; k++) await pair(data, `p${k}`, W, H, 10 + k);
  const out = join(dir, 'shared-out');
  const bin = resolve(import.meta.dirname, '../bin/moefusion.mjs');
  const fuseInto = () =>
    new Promise<number>((done) => {
      const p = spawn(process.execPath, [bin, 'fuse', '--ir', join(data, 'ir'), '--vi', join(data, 'vi'), '--out', out, '--weights', weights, '--quiet'], { stdio: 'ignore' });
      p.on('exit', (code) => done(code ?? -1));
    });
  const codes = await Promise.all([fuseInto(), fuseInto()]);
  assert.equal(codes, [0, 0]);
  const names = readdirSync(out).sort();
  assert.equal(names, ['p0.png', 'p1.png', 'p2.png', 'p3.png', 'p4.png', 'p5.png'], 'only the outputs, no temporary files');
  for (const name of names) {
    const img = await decodeImage(readFileSync(join(out, name)), name);
    assert.equal([img.width, img.height], [W, H], `${name} is complete`);
  }
});

t.run();
