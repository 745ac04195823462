/**
 * The npm package as a user meets it: `npm pack` (which compiles dist/), the tarball installed into a fresh project
 * from the npm cache, an ESM script run by plain `node` that fuses the bundled sample exactly as the installed CLI
 * does, and a strict NodeNext TypeScript consumer that type-checks against the shipped declarations.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeImage } from '../src/io/image.ts';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-pack-'));
const project = join(dir, 'consumer');
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
const versionOf = (pkg: string) => (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

const t = suite('package');
let tarball = '';

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('npm pack builds dist/ and ships no tests, results or benchmark files', () => {
  const out = npm(['pack', '--json', '--pack-destination', dir], root);
  const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  tarball = join(dir, info[0].filename);
  const files = info[0].files.map((f) => f.path);
  console.log(`  tarball ${info[0].filename}: ${(info[0].size / 2 ** 20).toFixed(1)} MiB packed, ${(info[0].unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${files.length} files`);
  for (const must of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/web/moefusion.js', 'dist/web.d.ts', 'bin/moefusion.mjs', 'weights/moefusion.safetensors', 'LICENSE'])
    assert.ok(files.includes(must), `${must} is in the package`);
  // The README is the package's front page: the documentation pages it links to ship with it.
  const pages = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/\]\((docs\/[\w-]+\.md)(?:#[\w-]*)?\)/g)].map((m) => m[1]);
  assert.ok(pages.length >= 10, `the README links the docs/ pages (${pages.length} found)`);
  for (const page of pages) assert.ok(files.includes(page), `${page}, linked from the README, is in the package`);
  const unwanted = files.filter((f) => /^(test|results|\.ci|scripts|src)\//.test(f) || (f.startsWith('bench/') && !f.startsWith('bench/reference/')) || f.endsWith('.test.ts'));
  assert.equal(unwanted, [], 'no tests, results, CI, scripts, sources or benchmark files');
  assert.ok(statSync(tarball).size < 25 * 2 ** 20, 'tarball under 25 MiB');
});

t('installed from the tarball: plain node imports it and fuses the sample as the installed CLI does', () => {
  rmSync(project, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`], project);
  const sample = join(project, 'node_modules/moefusion/samples');
  writeFileSync(
    join(project, 'fuse.mjs'),
    `import { Fuser, shutdownEngine } from 'moefusion';
import { writeFileSync } from 'node:fs';
const fuser = await Fuser.create();
const fused = await fuser.fuse(process.argv[2], process.argv[3], { color: true });
writeFileSync(process.argv[4], await fused.toPNG());
console.log(fused.width + 'x' + fused.height);
fuser.dispose();
shutdownEngine();
`,
  );
  const lib = spawnSync(process.execPath, ['fuse.mjs', join(sample, 'ir/00537D.png'), join(sample, 'vi/00537D.png'), 'lib.png'], { cwd: project, encoding: 'utf8' });
  assert.is(lib.status, 0, `library script failed: ${lib.stderr}`);
  assert.is(lib.stdout.trim(), '640x480');
  // Through a shell pipe, as in a terminal pipeline: Dawn's adapter warnings are hidden for terminals and pipes.
  const args = ['fuse', '--ir', join(sample, 'ir/00537D.png'), '--vi', join(sample, 'vi/00537D.png'), '--out', 'cli.png', '--color'];
  const cli = spawnSync('bash', ['-c', 'set -o pipefail; "$@" 2>&1 | cat', 'sh', join(project, 'node_modules/.bin/moefusion'), ...args], { cwd: project, encoding: 'utf8' });
  assert.is(cli.status, 0, `installed CLI failed: ${cli.stdout}`);
  assert.match(cli.stdout, /fused \S*ir\/00537D\.png \+ \S*vi\/00537D\.png in [\d.]+ s → cli\.png/);
  assert.not.match(cli.stdout, /artificially reduced/, 'no Dawn adapter warnings');
  return Promise.all(['lib.png', 'cli.png'].map((f) => decodeImage(readFileSync(join(project, f)), f))).then(([a, b]) => {
    assert.is(a.channels, 3);
    assert.equal([a.width, a.height], [640, 480]);
    assert.ok(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), 'the library and the CLI give the same pixels');
  });
});

t("a strict NodeNext TypeScript consumer and the library's documented examples type-check against the shipped declarations, with and without skipLibCheck", () => {
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { Fuser, FusedImage, InputError, type FuseOptions, type GrayImage } from 'moefusion';
const gray: GrayImage = { width: 2, height: 2, data: new Float32Array(4) };
const opts: FuseOptions = { color: true, attention: 'none' };
const fuser: Fuser = await Fuser.create({ weights: new URL('file:///w.safetensors') });
const fused: FusedImage = await fuser.fuse(gray, 'visible.png', opts);
const png: Uint8Array = await fused.toPNG();
const rgba: Uint8ClampedArray | Uint8Array = fused.toImageData().data;
const err: Error = new InputError('x');
console.log(png.length + rgba.length, err.message);
`,
  );
  // The TypeScript blocks of docs/library.md, in order, as one module (later blocks use the \`fuser\` of the first; the
  // loop over a folder names its files in \`names\`).
  const library = readFileSync(join(root, 'docs/library.md'), 'utf8');
  const blocks = [...library.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.ok(blocks.length >= 3, `the TypeScript examples of docs/library.md (${blocks.length} found)`);
  writeFileSync(join(project, 'examples.ts'), [...blocks, 'declare const names: string[];', 'export {};'].join('\n'));
  for (const skipLibCheck of [true, false]) {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', skipLibCheck, noEmit: true, types: ['node'] }, files: ['consumer.ts', 'examples.ts'] }),
    );
    const r = spawnSync(join(project, 'node_modules/.bin/tsc'), ['-p', '.'], { cwd: project, encoding: 'utf8' });
    assert.is(r.status, 0, `tsc (skipLibCheck ${skipLibCheck}) reported:\n${r.stdout}${r.stderr}`);
  }
});

t.run();
