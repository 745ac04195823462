/**
 * The browser build: `npm run build:web` bundles src/web.ts into dist/web/moefusion.js (one ES module, browser
 * platform, with a source map). Node-only modules (node:*, sharp, webgpu) are reached from src/ only through
 * dynamic imports on the Node path; here they become stubs that throw if a browser ever took that path, so the
 * bundle holds no import of them (esbuild would otherwise hoist their static imports to the top of the bundle).
 * test/browser.test.ts bundles its kernel checks with the same plugin.
 */
import { build, type Plugin } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
export const WEB_ENTRY = join(root, 'src/web.ts');
export const WEB_BUNDLE = join(root, 'dist/web/moefusion.js');

/** Packages that exist only in Node: node:* built-ins, Dawn's bindings, sharp. */
export const NODE_ONLY = /^(node:.*|webgpu|sharp)$/;

/** Replaces Node-only packages with a CommonJS stub (named imports resolve lazily) that throws when evaluated. */
export const nodeOnlyStubs: Plugin = {
  name: 'node-only-stubs',
  setup(b) {
    b.onResolve({ filter: NODE_ONLY }, (args) => ({ path: args.path, namespace: 'node-only' }));
    b.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
      contents: `module.exports = (() => { throw new Error(${JSON.stringify(`'${args.path}' is for Node only; the browser build never loads it (was a Node code path taken in a browser?)`)}); })();`,
      loader: 'js',
    }));
  },
};

/** Bundles one entry for the browser (ES module, ES2022, source map). */
export async function bundleForBrowser(entry: string, outfile: string, opts: { minify?: boolean } = {}): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: opts.minify ?? false,
    legalComments: 'none',
    logLevel: 'warning',
    plugins: [nodeOnlyStubs],
  });
}

/** Newest modification time of the .ts files under dir. */
function newestSource(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newestSource(p) : name.endsWith('.ts') ? s.mtimeMs : 0);
  }
  return t;
}

/** Whether dist/web/moefusion.js is missing or older than a source file. */
export function webBundleStale(): boolean {
  try {
    return statSync(WEB_BUNDLE).mtimeMs < newestSource(join(root, 'src'));
  } catch {
    return true;
  }
}

/** Builds dist/web/moefusion.js. */
export async function buildWeb(): Promise<string> {
  await bundleForBrowser(WEB_ENTRY, WEB_BUNDLE);
  return WEB_BUNDLE;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const started = Date.now();
  const out = await buildWeb();
  console.log(`${out.slice(root.length + 1)}: ${(statSync(out).size / 1024).toFixed(0)} KiB in ${Date.now() - started} ms`);
}
