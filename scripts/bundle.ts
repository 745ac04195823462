/**
 * `npm run bundle` → dist/moefusion-<version>-linux-x64.tar.xz: moefusion for a Linux x64 machine without Node, npm
 * or network. Unpacked anywhere, `./moefusion fuse …` runs on the host's GPU through Vulkan.
 *
 *   npx tsx scripts/bundle.ts [--lean] [--out DIR] [--xz LEVEL] [--keep]
 *
 * --lean (`npm run bundle:gpu`): for the GPU servers, which have the repository checkout: no weights, fixtures or
 *   samples (`moefusion selftest --fixture` and bench/gpu.sh take them from the checkout), named …-lean.tar.xz.
 * --xz LEVEL: the xz preset (default 9e, the strongest; the tests use 0 to be quick).
 * --keep: also leave the unpacked folder next to the archive.
 *
 * Contents of the folder moefusion-<version>-linux-x64[-lean]/:
 *   moefusion                launcher (POSIX sh): runtime/node on lib/cli/main.js
 *   runtime/node             the Node binary running this script (process.execPath), stripped when `strip` exists
 *   lib/cli/main.js          the application bundled by esbuild, two folders deep like src/cli/main.ts, so that the
 *   lib/cli/score-worker.js  sources' paths to the package root (weights/, fixtures/, package.json, bench/reference/)
 *                            hold unchanged; the metrics worker beside it, where src/metrics/score-pool.ts looks
 *   node_modules/            webgpu (index.js and dist/linux-x64/dawn.node only) and sharp with its linux-x64
 *                            native packages and its three small JavaScript dependencies
 *   package.json, LICENSE, THIRD-PARTY-LICENSES.txt, README.txt
 *   bench/reference/         the PyTorch side of `moefusion bench` (bench.py, moe_fusion.py)
 *   bench/gpu.sh             the GPU server's benchmark run (bench/README.md)
 *   weights/, fixtures/, samples/   (full bundle only)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const MB = 1e6;
/** The limits of the issue: the full bundle, and the lean one (what the GPU hosts may receive besides the checkout). */
const LIMIT = { full: 64 * MB, lean: 38 * MB };

const { values: args } = parseArgs({
  options: {
    lean: { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'dist') },
    xz: { type: 'string', default: '9e' },
    keep: { type: 'boolean', default: false },
  },
});
if (!/^[0-9]e?$/.test(args.xz!)) throw new Error(`--xz ${args.xz}: expected a preset 0-9, optionally with e (e.g. 9e)`);

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; description: string; license: string };
const name = `${pkg.name}-${pkg.version}-linux-x64${args.lean ? '-lean' : ''}`;
const outDir = resolve(args.out!);
const stage = join(outDir, name);
const archive = join(outDir, `${name}.tar.xz`);
const log = (line: string) => process.stderr.write(`[bundle] ${line}\n`);

/** A Linux x86-64 ELF executable: the only Node binary this bundle can carry. */
function checkNodeBinary(path: string): void {
  const head = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  readSync(fd, head, 0, 20, 0);
  closeSync(fd);
  const elf = head.readUInt32BE(0) === 0x7f454c46;
  if (!elf || head.readUInt16LE(18) !== 0x3e || process.platform !== 'linux')
    throw new Error(`${path} is not a Linux x86-64 Node binary: build the bundle with Node on Linux x64`);
}

/** The folder of an installed package, looked up as Node would from `from` (a package folder) or the root. */
function packageDir(id: string, from = root): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', id);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`package ${id} is not installed (run npm ci)`);
  }
}

const dropped = /(^|\/)(README|CHANGELOG|HISTORY)[^/]*$|\.d\.ts$|\.map$|\.(cc|h|gyp)$/i;

/** Copies the package's files that pass `keep` (paths relative to the package) into stage/node_modules/<id>. */
function copyPackage(id: string, dir: string, keep: (rel: string) => boolean = () => true): string[] {
  const target = join(stage, 'node_modules', id);
  const copied: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!['node_modules', 'test', 'docs', 'bin', 'install', 'src', 'build', 'include', 'glib-2.0'].includes(e.name)) walk(r);
      } else if (e.isFile() && !dropped.test(r) && keep(r)) {
        mkdirSync(dirname(join(target, r)), { recursive: true });
        copyFileSync(join(dir, r), join(target, r));
        copied.push(r);
      }
    }
  };
  walk('');
  if (!copied.includes('package.json')) throw new Error(`${id}: no package.json copied`);
  return copied;
}

function licenseText(id: string, dir: string): string {
  const files = readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f));
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string; license?: string };
  const body = files.map((f) => readFileSync(join(dir, f), 'utf8').trim()).join('\n\n');
  return `${id} ${meta.version ?? ''} (${meta.license ?? 'see the package'})\n\n${body || 'No license file in the package; its package.json names the license above.'}`;
}

function nodeLicense(): string {
  const bin = process.execPath;
  for (const p of [join(dirname(bin), '../LICENSE'), join(dirname(bin), '../share/doc/node/LICENSE'), '/usr/share/doc/nodejs/LICENSE'])
    if (existsSync(p)) return `Node.js ${process.version} (runtime/node)\n\n${readFileSync(p, 'utf8').trim()}`;
  return `Node.js ${process.version} (runtime/node): MIT and bundled third-party licenses, https://github.com/nodejs/node/blob/${process.version}/LICENSE`;
}

const LAUNCHER = `#!/bin/sh
# moefusion, self-contained: the Node runtime and the application are in this folder; nothing else is needed but
# a Vulkan loader and driver for the GPU (\`./moefusion info\` says which adapter it uses, or what to install).
self=$0
if real=$(readlink -f -- "$0" 2>/dev/null) && [ -n "$real" ]; then self=$real; fi
here=$(CDPATH= cd -- "$(dirname -- "$self")" && pwd -P) || exit 1
# A NODE_OPTIONS meant for another Node program (loaders, --require) must not reach this one.
unset NODE_OPTIONS NODE_PATH
exec "$here/runtime/node" $MOEFUSION_NODE_OPTIONS "$here/lib/cli/main.js" "$@"
`;

function readme(lean: boolean): string {
  return `moefusion ${pkg.version}, self-contained for Linux x64 (${lean ? 'lean: no weights, fixtures or samples' : 'full'})

Needs no Node, npm or network: only a Vulkan loader (libvulkan.so.1) and a Vulkan driver for the GPU (or Mesa's
lavapipe to run on the CPU). Without them, every command says what to install.

  ./moefusion info                                   the adapter, its limits and features
  ./moefusion selftest                               kernels and the whole network against references; exit 0 if all pass
  ./moefusion fuse --ir IR --vi VIS --out FUSED.png  (files, or folders of pairs; --shard I/N, --skip-existing)
  ./moefusion --help

${lean ? `This lean bundle is meant to be unpacked inside the repository checkout: bench/gpu.sh OUT_DIR runs the
self-test (with the checkout's fixtures/), the benchmarks and the adapter report. Pass --weights and --fixture
from the checkout to fuse and selftest.` : 'weights/moefusion.safetensors is the default model; samples/ holds one infrared/visible pair.'}
Node options for large jobs: MOEFUSION_NODE_OPTIONS="--max-old-space-size=16384" ./moefusion …
`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  checkNodeBinary(process.execPath);
  for (const [tool, pkgName] of [['tar', 'tar'], ['xz', 'xz-utils']])
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error(`${tool} is needed to build the archive (Debian/Ubuntu: apt-get install ${pkgName})`);
  rmSync(stage, { recursive: true, force: true });
  rmSync(archive, { force: true });
  mkdirSync(stage, { recursive: true });

  // 1. The application, bundled. webgpu and sharp load native code and stay packages (next step).
  const result = await build({
    entryPoints: { 'cli/main': join(root, 'src/cli/main.ts'), 'cli/score-worker': join(root, 'src/metrics/score-worker.ts') },
    outdir: join(stage, 'lib'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // onnxruntime-node (a development dependency, the benchmark's optional peer) is left out: `bench --ort` says so.
    external: ['webgpu', 'sharp', 'onnxruntime-node'],
    // Bundled CommonJS packages (commander) call require() for Node's own modules.
    banner: { js: "import { createRequire as __moefusionRequire } from 'node:module'; const require = __moefusionRequire(import.meta.url);" },
    minify: true,
    keepNames: true,
    legalComments: 'none', // the licenses of everything bundled go to THIRD-PARTY-LICENSES.txt
    metafile: true,
    logLevel: 'warning',
  });
  const bundled = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) bundled.add(m[1]);
  }

  // 2. Native packages, only their linux-x64 parts.
  const licenses: string[] = [];
  const webgpu = packageDir('webgpu');
  copyPackage('webgpu', webgpu, (r) => ['package.json', 'index.js', 'LICENSE.md', 'dist/linux-x64/dawn.node'].includes(r));
  const sharp = packageDir('sharp');
  copyPackage('sharp', sharp, (r) => r === 'package.json' || r === 'LICENSE' || /^lib\/[^/]+\.js$/.test(r));
  const shipped: Array<[string, string]> = [['webgpu', webgpu], ['sharp', sharp]];
  for (const id of ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64', '@img/colour', 'detect-libc', 'semver']) {
    const dir = packageDir(id, sharp);
    copyPackage(id, dir);
    shipped.push([id, dir]);
  }
  // libvips' package states its licensing (LGPL-3.0 and its components') only in its README: keep that one.
  copyFileSync(join(packageDir('@img/sharp-libvips-linux-x64', sharp), 'README.md'), join(stage, 'node_modules/@img/sharp-libvips-linux-x64/README.md'));

  // 3. The Node runtime.
  mkdirSync(join(stage, 'runtime'));
  const node = join(stage, 'runtime/node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  const strip = spawnSync('strip', ['--strip-all', node], { stdio: 'ignore' });
  log(`Node ${process.version} from ${process.execPath}${strip.status === 0 ? ' (stripped)' : ''}: ${(statSync(node).size / MB).toFixed(1)} MB`);

  // 4. Data, the PyTorch peer of the benchmark, the launcher and the notices.
  mkdirSync(join(stage, 'bench/reference'), { recursive: true });
  for (const f of ['bench.py', 'moe_fusion.py']) copyFileSync(join(root, 'bench/reference', f), join(stage, 'bench/reference', f));
  copyFileSync(join(root, 'bench/gpu.sh'), join(stage, 'bench/gpu.sh'));
  chmodSync(join(stage, 'bench/gpu.sh'), 0o755);
  if (!args.lean) {
    mkdirSync(join(stage, 'weights'));
    for (const f of ['moefusion.safetensors', 'README.md']) copyFileSync(join(root, 'weights', f), join(stage, 'weights', f));
    cpSync(join(root, 'fixtures'), join(stage, 'fixtures'), { recursive: true });
    cpSync(join(root, 'samples'), join(stage, 'samples'), { recursive: true });
  }
  writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license, type: 'module', private: true }, null, 2) + '\n');
  copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
  for (const id of [...bundled].sort()) licenses.push(licenseText(id, packageDir(id)));
  for (const [id, dir] of shipped) licenses.push(licenseText(id, dir));
  licenses.push(nodeLicense());
  writeFileSync(
    join(stage, 'THIRD-PARTY-LICENSES.txt'),
    `moefusion ${pkg.version} carries the following third-party software (bundled into lib/, or in node_modules/ and runtime/).\n\n` +
      licenses.join(`\n\n${'='.repeat(100)}\n\n`) +
      '\n',
  );
  writeFileSync(join(stage, 'README.txt'), readme(args.lean!));
  writeFileSync(join(stage, 'moefusion'), LAUNCHER);
  chmodSync(join(stage, 'moefusion'), 0o755);

  // 5. The archive.
  const level = `-${args.xz}`;
  log(`compressing with xz ${level} …`);
  const tmp = `${archive}.partial`;
  execFileSync('sh', ['-c', 'tar -C "$1" --owner=0 --group=0 --numeric-owner -cf - "$2" | xz -T0 "$3" > "$4"', 'sh', outDir, name, level, tmp], { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(tmp, archive);
  if (!args.keep) rmSync(stage, { recursive: true, force: true });

  const bytes = statSync(archive).size;
  const limit = args.lean ? LIMIT.lean : LIMIT.full;
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${relative(process.cwd(), archive) || basename(archive)}: ${(bytes / MB).toFixed(1)} MB (${bytes} bytes; limit ${limit / MB} MB) in ${seconds.toFixed(0)} s`);
  if (bytes > limit) {
    // The limits are for the default, strongest compression; quicker presets (tests) only warn.
    console.error(`[bundle] ${basename(archive)} is ${(bytes / MB).toFixed(1)} MB, over the ${limit / MB} MB limit${args.xz === '9e' ? '' : ` (at xz -${args.xz}; the limit is for the default -9e)`}`);
    if (args.xz === '9e') process.exitCode = 1;
  }
}

await main();
