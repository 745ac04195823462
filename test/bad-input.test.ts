/**
 * Bad input, as a hostile tester tries it: every case of the reliability issues, for every command that reads or
 * writes (`fuse`, `eval`, `detect`, `train`, `synth`, `bench`, `info`) and for the library. Each row: the exit code
 * of the table in docs/cli.md, one `moefusion:` line naming the file or argument, and nothing created or changed under
 * the test folder (no output, no temporary file, no new folder, inputs untouched) beyond the outputs the row
 * expects. Rows the CLI must refuse before it starts the GPU run with an adapter filter that matches nothing: a
 * command that started the GPU first would fail with "no adapter" instead. The CLI runs in this process through its
 * main(); two real processes check concurrent writes into one folder.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import sharp from 'sharp';
import { gpu } from './helpers/gpu.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Rng } from '../src/util/rng.ts';
import { main } from '../src/cli/main.ts';
import { EXIT_CODES, EXIT_GPU, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_USER } from '../src/cli/errors.ts';
import { configToMetadata } from '../src/model/config.ts';
import { FusionNet } from '../src/model/fusion-net.ts';
import { saveWeights } from '../src/model/weights-file.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';
import { decodeImage, readImage, writeImage } from '../src/io/image.ts';
import { Fuser } from '../src/model/fuser.ts';
import { InputError } from '../src/io/pixels.ts';
import { ImageError } from '../src/io/image-types.ts';
import { hasEngine, shutdownEngine } from '../src/tensor/engine.ts';
import { assertRejects } from './helpers/throws.ts';

const dir = mkdtempSync(join(tmpdir(), 'moefusion-bad-'));
const cfg = SMALL_GATES;
const weights = join(dir, 'w.safetensors');
const ir = join(dir, 'data/ir/a.png');
const vi = join(dir, 'data/vi/a.png');
const W = 24;
const H = 20;
/** A tmpfs filled to its last byte, where one can be mounted (root): every write there fails with ENOSPC. */
const full = join(dir, 'full');
let fullMounted = false;

interface Ran {
  code: number;
  out: string;
  err: string;
  /** Exit codes the interrupt handler asked for. */
  exits: number[];
}

/** Runs `moefusion ARGS` in this process: its exit code and what it printed. `during` runs while it works. */
async function run(args: string[], during?: () => Promise<void>): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  const [log, error, write, stdout] = [console.log, console.error, process.stderr.write, process.stdout.write];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(`${a.join(' ')}\n`);
  process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  process.stdout.write = ((chunk: string) => (out.push(String(chunk).trimEnd()), true)) as typeof process.stdout.write;
  const exitCode = process.exitCode;
  try {
    const running = main(['node', 'moefusion', ...args], (code) => exits.push(code));
    await during?.();
    const code = await running;
    return { code, out: out.join('\n'), err: err.join(''), exits };
  } finally {
    [console.log, console.error, process.stderr.write, process.stdout.write] = [log, error, write, stdout];
    process.exitCode = exitCode;
  }
}

/** Every file and folder under `root` with a hash of each file's bytes. */
function snapshot(root: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const key = relative(root, path);
      if (statSync(path).isDirectory()) {
        entries.set(`${key}/`, 'folder');
        walk(path);
      } else entries.set(key, createHash('sha1').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(root);
  return entries;
}

/** What changed between two snapshots: new entries (files and folders), changed files, removed entries. */
function changes(before: Map<string, string>, after: Map<string, string>): { created: string[]; changed: string[]; removed: string[] } {
  return {
    created: [...after.keys()].filter((k) => !before.has(k)).sort(),
    changed: [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k)).sort(),
    removed: [...before.keys()].filter((k) => !after.has(k)).sort(),
  };
}

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

/** Cuts a file after its first `bytes` bytes: a PNG keeps its header (the size reads fine) and loses its pixels. */
function truncate(path: string, bytes: number): void {
  writeFileSync(path, readFileSync(path).subarray(0, bytes));
}

/** The weights' variants of the table, made in before(). */
let w: Record<'nan' | 'inf' | 'json' | 'k9' | 'kTwo' | 'negGrid' | 'hugeGrid' | 'dup' | 'detector', string>;

function makeVariants(): void {
  const meta = (edit: (c: Record<string, unknown>) => void) => (_: unknown, m: Record<string, string>) => {
    const c = JSON.parse(m['moefusion.config'] ?? configToMetadata(cfg));
    edit(c);
    m['moefusion.config'] = JSON.stringify(c);
  };
  w = {
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
}

/** Mounts a small tmpfs at `full` and fills it, when this process may (root); false otherwise. */
function mountFullDisk(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  mkdirSync(full);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
  } catch {
    rmSync(full, { recursive: true, force: true });
    return false;
  }
  try {
    writeFileSync(join(full, 'filler'), Buffer.alloc(1 << 20));
  } catch {
    // ENOSPC: the disk is full, as wanted.
  }
  return true;
}

const t = suite('bad-input');

t.before(async () => {
  await gpu();
  const net = FusionNet.init(cfg, 3);
  await saveWeights(weights, net);
  net.dispose();
  makeVariants();
  await pair(join(dir, 'data'), 'a');
  await pair(join(dir, 'mismatch'), 'm');
  await writeImage(join(dir, 'mismatch/vi/m.png'), new Uint8Array(10 * 10), 10, 10, 1);
  await pair(join(dir, 'tiny'), 't', 1, 8);
  for (const [folder, side] of [['huge', 16000], ['giant', 20000]] as const) {
    mkdirSync(join(dir, folder, 'ir'), { recursive: true });
    mkdirSync(join(dir, folder, 'vi'), { recursive: true });
    hugePngHeader(join(dir, folder, 'ir/h.png'), side, side);
    hugePngHeader(join(dir, folder, 'vi/h.png'), side, side);
  }
  mkdirSync(join(dir, 'nomatch/ir'), { recursive: true });
  mkdirSync(join(dir, 'nomatch/vi'), { recursive: true });
  await writeImage(join(dir, 'nomatch/ir/x.png'), new Uint8Array(64), 8, 8, 1);
  await writeImage(join(dir, 'nomatch/vi/y.png'), new Uint8Array(64), 8, 8, 1);
  // Pairs whose visible image was cut short (its header still reads): one alone, and the middle one of three.
  await pair(join(dir, 'trunc'), 't', 64, 48, 5);
  truncate(join(dir, 'trunc/vi/t.png'), 400);
  for (const [k, name] of ['a', 'b', 'c'].entries()) await pair(join(dir, 'three'), name, W, H, 20 + k);
  truncate(join(dir, 'three/vi/b.png'), 100);
  // A fused folder for eval (the pair's visible image as a gray "fusion").
  mkdirSync(join(dir, 'fusedA'));
  await writeImage(join(dir, 'fusedA/a.png'), Uint8Array.from(new Rng(7).uniform(W * H, 0, 255)), W, H, 1);
  // A run folder holding the weights a new run would start from.
  mkdirSync(join(dir, 'run'));
  copyFileSync(weights, join(dir, 'run/weights.safetensors'));
  // A JPEG pair stored 40×20 with EXIF orientation 6 (turn a quarter clockwise): upright it is 20×40.
  const stored = Buffer.alloc(40 * 20);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) stored[y * 40 + x] = x < 10 ? 250 : 20 + y;
  mkdirSync(join(dir, 'exif'));
  for (const side of ['ir', 'vi']) await sharp(stored, { raw: { width: 40, height: 20, channels: 1 } }).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toFile(join(dir, `exif/${side}.jpg`));
  writeFileSync(join(dir, 'a-file'), 'not a folder');
  fullMounted = mountFullDisk();
});

t.after(() => {
  if (fullMounted) execFileSync('umount', [full]);
  rmSync(dir, { recursive: true, force: true });
  shutdownEngine();
});

/** A row of the table: a command line, what it must answer, and what it may leave. */
interface Row {
  what: string;
  args: string[];
  code: number;
  /** The one `moefusion:` line on stderr (exit ≠ 0), or a line of stdout (exit 0). */
  message: RegExp;
  /** Paths (relative to the test folder) that the row creates: every other file and folder stays as it was. */
  creates?: string[];
  /** Refused before the GPU starts: run with `--adapter` that matches nothing (the GPU would fail first). */
  beforeGpu?: boolean;
  /** More checks after the row (outputs' contents). */
  check?: () => Promise<void>;
}

const p = (...parts: string[]) => join(dir, ...parts);
const fuse = (...args: string[]) => ['fuse', ...args, ...(args.includes('--weights') ? [] : ['--weights', weights])];
const evalArgs = (...more: string[]) => ['eval', '--ir', p('data/ir'), '--vi', p('data/vi'), '--fused', `x=${p('fusedA')}`, ...more];

function rows(): Row[] {
  const out = p('out.png');
  const newDir = p('never-made');
  const table: Row[] = [
    // Outputs that are inputs, outputs that are one file (fuse's rule, for every command that writes).
    { what: 'fuse --out is --ir', args: fuse('--ir', ir, '--vi', vi, '--out', ir), code: EXIT_USER, message: /--out .*a\.png is an input \(--ir\)/, beforeGpu: true },
    { what: 'fuse --compare is --out', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--compare', out), code: EXIT_USER, message: /--compare .* is the same as --out/, beforeGpu: true },
    { what: 'fuse --out folder is the --ir folder', args: fuse('--ir', p('data/ir'), '--vi', p('data/vi'), '--out', p('data/ir')), code: EXIT_USER, message: /--out .* is an input folder \(--ir\)/, beforeGpu: true },
    { what: 'eval --csv onto an infrared image', args: evalArgs('--csv', ir), code: EXIT_USER, message: /--csv .*a\.png: writing .* would overwrite an input \(--ir /, beforeGpu: true },
    { what: 'eval --markdown onto a fused image', args: evalArgs('--markdown', p('fusedA/a.png')), code: EXIT_USER, message: /--markdown .*: writing .* would overwrite an input \(--fused /, beforeGpu: true },
    { what: 'eval --json and --csv one file', args: evalArgs('--json', p('scores.txt'), '--csv', p('scores.txt')), code: EXIT_USER, message: /--csv .*scores\.txt is the same as --json/, beforeGpu: true },
    { what: 'detect --out is the dataset\'s infrared folder', args: ['detect', '--data', p('data'), '--out', p('data/ir'), '--weights', weights], code: EXIT_USER, message: /--out .*: writing .*a\.png would overwrite an input \(--data /, beforeGpu: true },
    { what: 'train --out is the --data folder', args: ['train', '--data', p('data'), '--out', p('data'), '--steps', '1'], code: EXIT_USER, message: /--out .*data is an input folder \(--data\)/, beforeGpu: true },
    { what: 'train would overwrite its --init weights', args: ['train', '--data', p('data'), '--out', p('run'), '--init', p('run/weights.safetensors'), '--steps', '1'], code: EXIT_USER, message: /--out .*run: writing .*weights\.safetensors would overwrite an input \(--init /, beforeGpu: true },
    { what: 'bench --out below a file', args: ['bench', '--no-torch', '--out', p('a-file/results')], code: EXIT_USER, message: /--out .*a-file\/results: .*a-file is a file, not a folder/, beforeGpu: true },
    { what: 'fuse --out in /proc (no file can be created there)', args: fuse('--ir', ir, '--vi', vi, '--out', '/proc/x.png'), code: EXIT_USER, message: /--out \/proc: the folder is not writable/, beforeGpu: true },
    // Failed or partial runs leave no debris; a folder goes on past a pair it cannot decode.
    { what: 'fuse: an input that does not decode, into a new folder', args: fuse('--ir', p('trunc/ir/t.png'), '--vi', p('trunc/vi/t.png'), '--out', p('new/f.png')), code: EXIT_USER, message: /trunc\/vi\/t\.png: cannot be read as an image/ },
    { what: 'fuse folders: the only pair does not decode', args: fuse('--ir', p('trunc/ir'), '--vi', p('trunc/vi'), '--out', p('new-folder')), code: EXIT_USER, message: /1 of 1 pairs could not be fused: .*t\.png: cannot be read as an image/ },
    {
      what: 'fuse folders: the middle pair does not decode, the others are fused',
      args: fuse('--ir', p('three/ir'), '--vi', p('three/vi'), '--out', p('three-out')),
      code: EXIT_USER,
      message: /1 of 3 pairs could not be fused \(the others are in .*three-out; rerun with --skip-existing once fixed\): .*b\.png: cannot be read/,
      creates: ['three-out/', 'three-out/a.png', 'three-out/c.png'],
      check: async () => assert.equal(((await readImage(p('three-out/c.png'))) as { width: number }).width, W),
    },
    { what: 'fuse folders --skip-existing: only the bad pair again', args: fuse('--ir', p('three/ir'), '--vi', p('three/vi'), '--out', p('three-out'), '--skip-existing'), code: EXIT_USER, message: /1 of 1 pairs could not be fused: .*b\.png: cannot be read/ },
    // Exit codes of the table in docs/cli.md.
    { what: 'synth --count 0', args: ['synth', '--out', newDir, '--count', '0'], code: EXIT_USAGE, message: /--count 0: expected an integer ≥ 1/, beforeGpu: true },
    { what: 'synth --size 2x2', args: ['synth', '--out', newDir, '--size', '2x2'], code: EXIT_USAGE, message: /--size 2x2: expected WIDTHxHEIGHT/, beforeGpu: true },
    { what: 'an image over the decoder\'s pixel limit', args: fuse('--ir', p('giant/ir'), '--vi', p('giant/vi'), '--out', newDir), code: EXIT_GPU, message: /h\.png: 20000×20000 \(400 megapixels\) is larger than the 268 megapixels/ },
    { what: 'an image too large for the adapter', args: fuse('--ir', p('huge/ir'), '--vi', p('huge/vi'), '--out', newDir), code: EXIT_GPU, message: /h\.png: 16000×16000 needs .* GiB/ },
    // Smaller cases.
    { what: 'fuse --shard on files', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--shard', '9/2'), code: EXIT_USAGE, message: /--shard 9\/2: --ir and --vi are files/, beforeGpu: true },
    { what: '--backend null info', args: ['--backend', 'null', 'info'], code: EXIT_OK, message: /software\s+no GPU at all: the null backend runs nothing/ },
    {
      what: 'fuse prints its inputs\' and output\'s paths (one name in two folders)',
      args: fuse('--ir', ir, '--vi', vi, '--out', p('named.png')),
      code: EXIT_OK,
      message: /^fused .*data\/ir\/a\.png \+ .*data\/vi\/a\.png in [\d.]+ s → .*named\.png$/m,
      creates: ['named.png'],
    },
    {
      what: 'EXIF orientation is applied (a portrait stored sideways fuses upright)',
      args: fuse('--ir', p('exif/ir.jpg'), '--vi', p('exif/vi.jpg'), '--out', p('upright.png')),
      code: EXIT_OK,
      message: /^fused /,
      creates: ['upright.png'],
      check: async () => {
        const fused = await readImage(p('upright.png'));
        assert.equal([fused.width, fused.height], [20, 40], 'the fusion is upright: 20×40');
        // Orientation 6 turns the picture a quarter clockwise: the bright left band of the stored image is on top.
        const input = await readImage(p('exif/ir.jpg'));
        const c = input.channels;
        const row = (y: number) => [...input.data.subarray(y * 20 * c, (y + 1) * 20 * c)].reduce((a, b) => a + b, 0) / (20 * c);
        assert.equal([input.width, input.height], [20, 40]);
        assert.ok(row(2) > row(35) + 100, `the bright band is at the top (${row(2)} vs ${row(35)})`);
      },
    },
    // The weights, the images' sizes, the device (from before).
    { what: 'unknown --out extension', args: fuse('--ir', ir, '--vi', vi, '--out', p('out.foo')), code: EXIT_USER, message: /--out .*out\.foo: unknown image extension/, beforeGpu: true },
    { what: '--out is a folder', args: fuse('--ir', ir, '--vi', vi, '--out', p('data')), code: EXIT_USER, message: /--out .*data: is a folder/, beforeGpu: true },
    { what: 'bad --compare extension', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--compare', p('c.txt')), code: EXIT_USER, message: /--compare .*c\.txt/, beforeGpu: true },
    { what: '--depth 16 as JPEG', args: fuse('--ir', ir, '--vi', vi, '--out', p('o.jpg'), '--depth', '16'), code: EXIT_USER, message: /--depth 16 needs/, beforeGpu: true },
    { what: '--depth 7', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--depth', '7'), code: EXIT_USAGE, message: /--depth 7/, beforeGpu: true },
    { what: '--shard 3/3', args: fuse('--ir', p('data/ir'), '--vi', p('data/vi'), '--out', newDir, '--shard', '3/3'), code: EXIT_USAGE, message: /--shard 3\/3/, beforeGpu: true },
    { what: '--attention bogus', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--attention', 'bogus'), code: EXIT_USAGE, message: /--attention bogus/, beforeGpu: true },
    { what: 'missing input', args: fuse('--ir', p('nope.png'), '--vi', vi, '--out', out), code: EXIT_USER, message: /--ir .*nope\.png: no such file/, beforeGpu: true },
    { what: 'folders with no matching names', args: fuse('--ir', p('nomatch/ir'), '--vi', p('nomatch/vi'), '--out', newDir), code: EXIT_USER, message: /unmatched pairs/, beforeGpu: true },
    { what: '--weights is a folder', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', dir), code: EXIT_USER, message: /--weights .*: is a folder/, beforeGpu: true },
    { what: 'pair sizes differ (header)', args: fuse('--ir', p('mismatch/ir'), '--vi', p('mismatch/vi'), '--out', newDir), code: EXIT_USER, message: /m\.png is 24×20 but .*m\.png is 10×10/ },
    { what: 'tiny image', args: fuse('--ir', p('tiny/ir/t.png'), '--vi', p('tiny/vi/t.png'), '--out', out), code: EXIT_USER, message: /1×8 is too small/ },
    { what: 'all-NaN weights', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.nan), code: EXIT_USER, message: /all-nan\.safetensors: tensor .* holds NaN/ },
    { what: 'Inf in one tensor', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.inf), code: EXIT_USER, message: /one-inf\.safetensors: tensor encoder\.Conv1\.conv_r\.weight holds Infinity at element 5/ },
    { what: 'malformed config JSON', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.json), code: EXIT_USER, message: /bad-json\.safetensors: 'moefusion\.config' metadata is not valid JSON/ },
    { what: 'k 9', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.k9), code: EXIT_USER, message: /k9\.safetensors: 'moefusion\.config' k is 9/ },
    { what: 'k "two"', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.kTwo), code: EXIT_USER, message: /k-two\.safetensors: 'moefusion\.config' k is "two"/ },
    { what: 'negative gate grid', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.negGrid), code: EXIT_USER, message: /neg-grid\.safetensors: 'moefusion\.config' local_grid/ },
    { what: '100000×100000 gate grid', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.hugeGrid), code: EXIT_USER, message: /huge-grid\.safetensors: 'moefusion\.config' global_grid/ },
    { what: 'duplicate tensor names', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.dup), code: EXIT_USER, message: /duplicate\.safetensors: tensor encoder\.Conv1\.conv_r\.bias appears twice/ },
    { what: 'stray detector tensor', args: fuse('--ir', ir, '--vi', vi, '--out', out, '--weights', w.detector), code: EXIT_USER, message: /stray-detector\.safetensors: tensor detector\.vis\.bogus\.weight/ },
    { what: '--backend null for fuse', args: ['--backend', 'null', ...fuse('--ir', ir, '--vi', vi, '--out', out)], code: EXIT_USAGE, message: /--backend null runs no GPU code/, beforeGpu: true },
    { what: '--adapter that matches nothing', args: ['--adapter', 'nosuchgpu', ...fuse('--ir', ir, '--vi', vi, '--out', out)], code: EXIT_GPU, message: /no adapter's name contains "nosuchgpu"; available: / },
    { what: 'detect without a detector', args: ['detect', '--ir', ir, '--vi', vi, '--out', newDir, '--weights', weights], code: EXIT_USER, message: /w\.safetensors.*(no detector|holds no detector)/ },
    { what: 'bench --sizes 64', args: ['bench', '--sizes', '64', '--no-torch', '--out', newDir], code: EXIT_USAGE, message: /--sizes 64: expected 2 positive integers/, beforeGpu: true },
  ];
  if (process.platform === 'linux')
    table.push({ what: '--backend metal on Linux', args: ['--backend', 'metal', 'info'], code: EXIT_GPU, message: /backend=metal does not exist on Linux \(it is macOS's\): use vulkan or opengles/ });
  if (fullMounted)
    table.push({ what: 'disk full', args: fuse('--ir', ir, '--vi', vi, '--out', p('full/f.png')), code: EXIT_GPU, message: /full\/f\.png: cannot be written \(no space left on the device\)/ });
  else console.log('  (the disk-full row needs a tmpfs, which only root can mount: not run)');
  return table;
}

t('the table: each case answers with its exit code and one line naming it, and leaves nothing behind', async () => {
  for (const row of rows()) {
    const before = snapshot(dir);
    // Without a running engine, so that a command that starts the GPU before its checks meets the adapter filter.
    shutdownEngine();
    const r = await run(row.beforeGpu ? ['--adapter', 'no-such-adapter-zz', ...row.args] : row.args);
    assert.is(r.code, row.code, `${row.what}: exit code (stderr: ${r.err})`);
    if (row.code === EXIT_OK) assert.match(r.out, row.message, `${row.what}: ${r.out}`);
    else {
      // One message, the last line; before it only progress lines (a folder's bar ends before the failures are told).
      const lines = r.err.trim().split('\n').filter(Boolean);
      const messages = lines.filter((l) => !/^[\w ]+: \d+\/\d+ \(\d+%\)/.test(l));
      assert.is(messages.length, 1, `${row.what}: one line of error, got: ${r.err}`);
      assert.is(messages[0], lines.at(-1), `${row.what}: the message is the last line`);
      assert.match(messages[0], /^moefusion: /, row.what);
      assert.match(messages[0], row.message, row.what);
    }
    const { created, changed, removed } = changes(before, snapshot(dir));
    assert.equal(created, (row.creates ?? []).slice().sort(), `${row.what}: what it created`);
    assert.equal(changed, [], `${row.what}: nothing changed`);
    assert.equal(removed, [], `${row.what}: nothing removed`);
    await row.check?.();
  }
});

t('Ctrl-C during a fuse: exit 130, one line, no new folder and no temporary file', async () => {
  shutdownEngine();
  const before = snapshot(dir);
  // Interrupted as soon as the GPU has started (its checks are done, the fusion has not been written).
  const r = await run(fuse('--ir', ir, '--vi', vi, '--out', p('sigint/new/f.png')), async () => {
    while (!hasEngine()) await new Promise((next) => setImmediate(next));
    process.emit('SIGINT');
  });
  assert.equal(r.exits, [EXIT_INTERRUPTED], 'the handler exits 130');
  assert.match(r.err.split('\n')[0], /^moefusion: interrupted \(SIGINT\); no partial output was left$/);
  assert.equal(changes(before, snapshot(dir)), { created: [], changed: [], removed: [] }, 'nothing created or changed');
});

t("the exit-code table of docs/cli.md is the CLI's", () => {
  const page = readFileSync(resolve(import.meta.dirname, '../docs/cli.md'), 'utf8');
  const start = page.indexOf('## Exit codes');
  assert.ok(start >= 0, "docs/cli.md has its '## Exit codes' section");
  const section = page.slice(start);
  const table = [...section.matchAll(/^\| (\d+) \| (.*) \|$/gm)].map((m) => [Number(m[1]), m[2]]);
  assert.equal(table, EXIT_CODES.map(([code, meaning]) => [code, meaning]));
});

t('library: bad pixels, sizes, forms and attention maps are refused with InputError naming the image', async () => {
  const fuser = await Fuser.create({ weights });
  const disposed = await Fuser.create({ weights });
  disposed.dispose();
  disposed.dispose(); // twice does nothing
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
    ['fuse() after dispose()', () => disposed.fuse(gray(ok()), gray(ok())), /^Fuser\.fuse: this Fuser was disposed \(dispose\(\) released its weights\); create another with Fuser\.create\(\)$/, Error],
    ['detect() after dispose()', () => disposed.detect(gray(ok()), gray(ok())), /^Fuser\.detect: this Fuser was disposed/, Error],
  ];
  for (const [what, call, pattern, cls = InputError] of cases) await assertRejects(call, pattern, cls, what);
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
