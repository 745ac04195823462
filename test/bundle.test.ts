/**
 * The self-contained bundle as a machine without Node meets it: `scripts/bundle.ts` (at a quick xz preset) builds
 * the archive, which is unpacked into a temporary folder and run with a PATH that has no node or npm: `./moefusion
 * fuse` on the sample pair gives the same image as the package's own CLI, and `./moefusion selftest` passes. Without
 * a Vulkan loader or driver (simulated where mount namespaces are allowed, and by VK_ICD_FILENAMES) it says what to
 * install.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readImage } from '../src/io/image.ts';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-bundle-'));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const name = `moefusion-${version}-linux-x64`;
const unpacked = join(dir, 'unpacked', name);
/** A PATH with only what the launcher uses (readlink, dirname): no node, no npm. */
const bin = join(dir, 'bin');

function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = unpacked) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { PATH: bin, HOME: dir, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.replace(/^Warning: .*\n(\s+at .*\n)?/gm, ''), error: r.error };
}

const t = suite('bundle');

t.after(() => rmSync(dir, { recursive: true, force: true }));

/** The archive needs xz (Debian's xz-utils, in most installations but not in every minimal image). */
const hasXz = spawnSync('xz', ['--version'], { stdio: 'ignore' }).status === 0;
const test = (title: string, fn: () => void | Promise<void>) =>
  t(title, hasXz ? fn : () => console.log(`  (skipped: no xz here to build the archive: apt-get install xz-utils) ${title}`));

test('npm run bundle builds a Linux x64 archive under 64 MB with the runtime, the application and the data', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/bundle.ts'), '--xz', '0', '--out', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const archive = join(dir, `${name}.tar.xz`);
  assert.match(out, new RegExp(`${name}\\.tar\\.xz: [\\d.]+ MB`), 'the size is printed');
  const size = statSync(archive).size;
  console.log(`  ${name}.tar.xz at xz -0: ${(size / 1e6).toFixed(1)} MB (npm run bundle uses -9e)`);
  assert.ok(size < 64e6, `${size} bytes`);
  mkdirSync(join(dir, 'unpacked'));
  execFileSync('tar', ['-xJf', archive, '-C', join(dir, 'unpacked')]);
  for (const f of ['moefusion', 'runtime/node', 'lib/cli/main.js', 'lib/cli/score-worker.js', 'node_modules/webgpu/dist/linux-x64/dawn.node', 'node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64.node', 'weights/moefusion.safetensors', 'fixtures/moe-fusion-small.safetensors', 'samples/ir/00537D.png', 'bench/gpu.sh', 'THIRD-PARTY-LICENSES.txt'])
    assert.ok(existsSync(join(unpacked, f)), `${f} is in the bundle`);
  assert.not.ok(existsSync(join(unpacked, 'node_modules/webgpu/dist/linux-arm64')), 'only the linux-x64 Dawn');
  mkdirSync(bin);
  for (const tool of ['readlink', 'dirname']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
  assert.is(run('/bin/sh', ['-c', 'command -v node || command -v npm || echo none'], {}, dir).stdout.trim(), 'none', 'no node or npm on the PATH');
});

test('./moefusion fuse without node on the PATH gives the same image as the package CLI', async () => {
  const ir = 'samples/ir/00537D.png';
  const vi = 'samples/vi/00537D.png';
  const fromBundle = join(dir, 'bundle.png');
  const r = run('./moefusion', ['fuse', '--ir', ir, '--vi', vi, '--out', fromBundle, '--color']);
  assert.is(r.code, 0, r.stderr || String(r.error));
  const fromPackage = join(dir, 'package.png');
  const p = spawnSync(process.execPath, [join(root, 'bin/moefusion.mjs'), 'fuse', '--ir', join(root, ir), '--vi', join(root, vi), '--out', fromPackage, '--color'], { cwd: root, encoding: 'utf8' });
  assert.is(p.status, 0, p.stderr);
  const [a, b] = [await readImage(fromBundle), await readImage(fromPackage)];
  assert.equal([a.width, a.height, a.channels], [640, 480, 3]);
  assert.equal([b.width, b.height, b.channels], [a.width, a.height, a.channels]);
  assert.ok(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)), 'identical pixels');
  assert.is(run('./moefusion', ['--version']).stdout.trim(), version);
});

test('./moefusion selftest passes every check from the bundle', () => {
  const r = run('./moefusion', ['selftest']);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /(\d+) of \1 checks passed/);
  assert.match(r.stdout, /pass {2}network training step \(PyTorch fixture\)/);
});

test('no Vulkan driver or loader: exit 3 and what to install', () => {
  const icd = run('./moefusion', ['info'], { VK_ICD_FILENAMES: '/nonexistent' });
  assert.is(icd.code, 3, icd.stderr);
  assert.match(icd.stderr.trim(), /^moefusion: no WebGPU adapter available .*VK_ICD_FILENAMES=\/nonexistent names no driver manifest at \/nonexistent: unset it/);
  // The loader hidden by an overlay in a private mount namespace (root with CAP_SYS_ADMIN only; skipped elsewhere).
  const lib = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'].find((d) => existsSync(join(d, 'libvulkan.so.1')));
  const hide = lib && spawnSync('unshare', ['-m', 'true']).status === 0;
  if (!hide) {
    console.log('  (no mount namespace here: the missing-loader case is not simulated)');
    return;
  }
  const script = `set -e; t=$(mktemp -d); mount -t tmpfs none "$t"; mkdir "$t/u" "$t/w"; mount -t overlay overlay -o "lowerdir=${lib},upperdir=$t/u,workdir=$t/w" ${lib}; rm -f ${lib}/libvulkan.so.1*; exec ./moefusion info`;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { cwd: unpacked, encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin:/usr/sbin:/sbin`, HOME: dir } });
  if (/mount|overlay|permission/i.test(r.stderr) && !/moefusion:/.test(r.stderr)) {
    console.log(`  (overlay mounts not allowed here: ${r.stderr.trim().split('\n')[0]})`);
    return;
  }
  assert.is(r.status, 3, r.stderr);
  assert.match(r.stderr, /moefusion: no WebGPU adapter available .*the Vulkan loader \(libvulkan\.so\.1\) is missing: install libvulkan1 \(Debian\/Ubuntu\)/);
});

t.run();
