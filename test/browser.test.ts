/**
 * The browser build in a real Chromium (Debian's, with SwiftShader's WebGPU), driven by playwright-core against the
 * demo's static server: the page fuses the sample pair (at 160×120) exactly as the Node engine does; its answers to
 * bad input and to a browser without WebGPU; the kernel catalogue's quick cases (test/browser/kernels.ts) against
 * float64. Fails with a message when /usr/bin/chromium (or $MOEFUSION_CHROMIUM) is missing (scripts/setup.sh installs it).
 * MOEFUSION_WEB_SCREENSHOT=FILE saves the page after the fusion there (results/web-page.png, shown in docs/browser.md).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildWeb, bundleForBrowser, WEB_BUNDLE } from '../scripts/build-web.ts';
import { startWebServer, type WebServer } from '../scripts/serve-web.ts';
import { Fuser } from '../src/model/fuser.ts';
import { decodeImage, encodeImage } from '../src/io/image.ts';
import { assertClose, maxRelError } from './helpers/compare.ts';
import type { KernelReport } from './browser/kernels.ts';

/** Debian's Chromium (scripts/setup.sh installs it); MOEFUSION_CHROMIUM names another build. */
const CHROMIUM = process.env.MOEFUSION_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const root = resolve(import.meta.dirname, '..');
const SIZE = { width: 160, height: 120 };
/**
 * The limit of every wait on the browser (launch, navigation, the page's own states, actions, downloads): generous,
 * since a loaded machine starts Chromium and SwiftShader's WebGPU slowly. Each wait ends as soon as its state is
 * reached; Playwright's default of 30 s failed tests under load.
 */
const LIMIT_MS = 10 * 60_000;

const t = suite('browser');

interface Env {
  browser: Browser;
  server: WebServer;
  dir: string;
}
let env: Promise<Env> | null = null;
const contexts: BrowserContext[] = [];

/** Builds both bundles, starts the server and Chromium once for the file; throws a clear message without Chromium. */
function setup(): Promise<Env> {
  env ??= (async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: the browser tests need Chromium (Debian's chromium package: \`bash scripts/setup.sh\` or \`apt-get install chromium\` installs it; MOEFUSION_CHROMIUM names another build)`,
      );
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'moefusion-browser-'));
    await buildWeb();
    await bundleForBrowser(join(root, 'test/browser/kernels.ts'), join(dir, 'kernels.js'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>kernel checks</title><link rel="icon" href="data:,"><script type="module" src="kernels.js"></script>');
    const server = await startWebServer({ port: 0, mounts: { '/test-kernels/': dir } });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: LIMIT_MS });
    return { browser, server, dir };
  })();
  return env;
}

/** A fresh page (own context) with its errors collected. */
async function newPage(opts: { noWebGPU?: boolean } = {}): Promise<{ page: Page; errors: string[] }> {
  const { browser } = await setup();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, acceptDownloads: true });
  context.setDefaultTimeout(LIMIT_MS);
  context.setDefaultNavigationTimeout(LIMIT_MS);
  contexts.push(context);
  // (Source text, not a function: tsx names the functions it compiles with a helper the page does not have.)
  if (opts.noWebGPU) await context.addInitScript({ content: "Object.defineProperty(Navigator.prototype, 'gpu', { get() { return undefined; }, configurable: true });" });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

const demoUrl = async (query = '') => (await setup()).server.url + query;
const errorText = (page: Page) => page.evaluate(() => (window as unknown as { moefusionDemo: { error: string | null } }).moefusionDemo.error ?? '');

t.after(async () => {
  if (!env) return;
  const e = await env.catch(() => null);
  for (const c of contexts) await c.close().catch(() => {});
  await e?.browser.close();
  await e?.server.close();
  if (e) rmSync(e.dir, { recursive: true, force: true });
});

t('the web bundle holds no Node module (node:*, sharp, webgpu) and exports the browser API', async () => {
  await buildWeb();
  const code = readFileSync(WEB_BUNDLE, 'utf8');
  assert.not.match(code, /^\s*import\s.*from\s*["'](node:|sharp|webgpu)/m, 'no static import of a Node module');
  assert.not.match(code, /\bimport\(\s*["'](node:|sharp|webgpu)/, 'no dynamic import of a Node module');
  assert.not.match(code, /\brequire\(\s*["'](node:|sharp|webgpu)/, 'no require of a Node module');
  const exported = /export\s*\{([^}]*)\}\s*;?\s*(\/\/#.*)?\s*$/.exec(code)?.[1] ?? '';
  for (const name of ['Fuser', 'FusedImage', 'InputError', 'imageFrom', 'hasWebGPU', 'adapterInfo', 'NoAdapterError'])
    assert.match(exported, new RegExp(`\\b${name}\\b`), `the bundle exports ${name}`);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
  assert.is(pkg.exports['./web']?.browser, './dist/web/moefusion.js', 'package.json exports moefusion/web');
});

t('the static server serves the page, the bundle, the samples and the weights, and nothing else', async () => {
  const server = await startWebServer({ port: 0 });
  try {
    const base = server.url.replace(/\/web\/$/, '');
    const get = async (path: string, method = 'GET') => {
      const res = await fetch(base + path, { method, redirect: 'manual' });
      return { status: res.status, type: res.headers.get('content-type') ?? '', body: method === 'GET' ? await res.text() : '' };
    };
    const page = await get('/web/');
    assert.is(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /<script type="module" src="app.js">/);
    assert.match((await get('/dist/web/moefusion.js', 'HEAD')).type, /^text\/javascript/);
    assert.is((await get('/samples/ir/00537D.png', 'HEAD')).type, 'image/png');
    assert.is((await get('/weights/moefusion.safetensors', 'HEAD')).status, 200);
    assert.is((await get('/')).status, 302, '/ redirects to the page');
    for (const path of ['/package.json', '/src/index.ts', '/dist/index.js'])
      assert.ok([403, 404].includes((await get(path)).status), `${path} is not served`);
    // An escaped '..' reaches the server as written (fetch would resolve a plain one).
    const { port } = new URL(base);
    const status = await new Promise<number>((ok, fail) =>
      request({ host: '127.0.0.1', port, path: '/web/..%2f..%2fpackage.json' }, (res) => (res.resume(), ok(res.statusCode ?? 0))).on('error', fail).end(),
    );
    assert.is(status, 403, 'no way out of the served folders');
  } finally {
    await server.close();
  }
});

t('the page fuses the sample pair at 160×120 like the Node engine (1e-4 relative), shows time and adapter, downloads a PNG', async () => {
  const { page, errors } = await newPage();
  await page.goto(await demoUrl(`?sample&size=${SIZE.width}x${SIZE.height}&autorun`));
  await page.waitForFunction(() => ['done', 'error', 'no-webgpu'].includes((window as unknown as { moefusionDemo: { state: string } }).moefusionDemo.state), null, { polling: 500 });
  assert.is(await errorText(page), '', 'no error in the page');
  type Pixels = { width: number; height: number; data: number[] };
  const run = (await page.evaluate(`(() => {
    const r = window.moefusionDemo.lastRun;
    const img = (i) => ({ width: i.width, height: i.height, data: Array.from(i.data) });
    return { width: r.width, height: r.height, ms: r.ms, adapter: r.adapter.name, software: r.adapter.isSoftware, ir: img(r.ir), vi: img(r.vi), fused: Array.from(r.fused) };
  })()`)) as { width: number; height: number; ms: number; adapter: string; software: boolean; ir: Pixels; vi: Pixels; fused: number[] };
  assert.equal([run.width, run.height], [SIZE.width, SIZE.height]);
  assert.equal([run.ir.width, run.ir.height, run.ir.data.length], [SIZE.width, SIZE.height, SIZE.width * SIZE.height * 4]);
  const timing = (await page.textContent('#timing')) ?? '';
  assert.match(timing, new RegExp(`Fused ${SIZE.width}×${SIZE.height} in [\\d.]+ s on ${run.adapter}`), `timing line: ${timing}`);
  assert.match((await page.textContent('#adapter')) ?? '', run.adapter);
  const shot = process.env.MOEFUSION_WEB_SCREENSHOT;
  const shotPath = shot ? resolve(shot) : join((await setup()).dir, 'web-page.png');
  mkdirSync(dirname(shotPath), { recursive: true });
  await page.screenshot({ path: shotPath, fullPage: true });

  // The Node engine (lavapipe) on the same downscaled RGBA pixels and the same weights.
  const fuser = await Fuser.create({ weights: join(root, 'weights/moefusion.safetensors') });
  const rgba = (i: Pixels) => ({ width: i.width, height: i.height, data: Uint8ClampedArray.from(i.data) });
  const started = performance.now();
  const node = await fuser.fuse(rgba(run.ir), rgba(run.vi));
  const nodeMs = performance.now() - started;
  fuser.dispose();
  const rel = maxRelError(run.fused, node.data);
  console.log(`  page (${run.adapter}${run.software ? ', software' : ''}): ${(run.ms / 1000).toFixed(2)} s, first run; Node: ${(nodeMs / 1000).toFixed(2)} s; max relative difference ${rel.toExponential(2)}`);
  assertClose(run.fused, node.data, { rtol: 1e-4, atol: 1e-6, what: 'page vs Node fused image' });
  assert.ok(rel <= 1e-4, `max relative difference ${rel}`);

  // Download PNG: the page's encoder (canvas) gives a 160×120 picture.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.match(download.suggestedFilename(), /^fused-.*\.png$/);
  const png = await decodeImage(readFileSync((await download.path())!), 'download');
  assert.equal([png.width, png.height], [SIZE.width, SIZE.height]);
  assert.equal(errors, [], 'no uncaught page errors');
});

t('bad input shows its message in the page: images of different sizes, a file that is not an image', async () => {
  const { page, errors } = await newPage();
  await page.goto(await demoUrl());
  await page.waitForFunction(() => (window as unknown as { moefusionDemo: { state: string } }).moefusionDemo.state !== 'starting');
  const small = Buffer.from(await encodeImage(new Uint8Array(64 * 48 * 3).fill(90), 64, 48, 3, 'png'));
  await page.setInputFiles('#file-ir', join(root, 'samples/ir/00537D.png'));
  await page.setInputFiles('#file-vi', { name: 'small.png', mimeType: 'image/png', buffer: small });
  await page.waitForFunction(() => /differ in size/.test(document.getElementById('error')!.textContent ?? ''));
  const sizes = await page.textContent('#error');
  assert.match(sizes ?? '', /infrared 640×480 \(00537D\.png\), visible 64×48 \(small\.png\)/);
  assert.ok(await page.isVisible('#error'), 'the message is shown');
  assert.ok(await page.isDisabled('#fuse'), 'Fuse is disabled');

  await page.setInputFiles('#file-vi', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not pixels\n') });
  await page.waitForFunction(() => /notes\.txt/.test(document.getElementById('error')!.textContent ?? ''));
  const notImage = (await page.textContent('#error')) ?? '';
  assert.match(notImage, /visible image cannot be used: notes\.txt: is not an image this browser can decode/);
  assert.ok(await page.isDisabled('#fuse'), 'Fuse stays disabled');
  assert.ok(await page.evaluate(() => document.getElementById('drop-vi')!.classList.contains('bad')), 'the visible slot is marked');

  // A matching pair clears the message and enables Fuse.
  await page.setInputFiles('#file-vi', join(root, 'samples/vi/00537D.png'));
  await page.waitForFunction(() => document.getElementById('error')!.hidden);
  assert.ok(await page.isEnabled('#fuse'), 'Fuse is enabled for a matching pair');
  assert.equal(errors, [], 'no uncaught page errors');
});

t('without WebGPU the page and the library say what to do', async () => {
  const { page, errors } = await newPage({ noWebGPU: true });
  await page.goto(await demoUrl('?sample'));
  await page.waitForFunction(() => (window as unknown as { moefusionDemo: { state: string } }).moefusionDemo.state === 'no-webgpu');
  const text = (await page.textContent('#error')) ?? '';
  assert.match(text, /This browser has no WebGPU/);
  assert.match(text, /Chrome or Edge 113 or later/);
  assert.match(text, /chrome:\/\/flags\/#enable-unsafe-webgpu/);
  assert.ok(await page.isVisible('#error'));
  assert.ok(await page.isDisabled('#fuse'), 'Fuse is disabled');
  // The library's own error, from Fuser.create in such a browser.
  const message = await page.evaluate(async () => {
    const m = await import('/dist/web/moefusion.js' as string);
    try {
      await m.Fuser.create({ weights: '/weights/moefusion.safetensors' });
      return 'no error';
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    }
  });
  assert.match(message, /^NoAdapterError: no WebGPU adapter available \(this browser has no WebGPU: navigator\.gpu is missing\)\. Use a browser with WebGPU enabled/);
  assert.equal(errors, [], 'no uncaught page errors');
});

t('kernel subset in the browser (the catalogue\'s quick cases: conv and gradients, Winograd, matmul, gate, combine, attention, resize, softmax, sum, Adam) matches float64', async () => {
  const { page, errors } = await newPage();
  await page.goto((await setup()).server.url.replace(/\/web\/$/, '/test-kernels/'));
  await page.waitForFunction(() => 'moefusionKernelChecks' in window);
  const report = (await page.evaluate(() => (window as unknown as { moefusionKernelChecks: { run(): Promise<unknown> } }).moefusionKernelChecks.run())) as KernelReport;
  const sub = report.subgroupMaxSize ? `subgroups of ${report.subgroupMinSize}-${report.subgroupMaxSize} lanes` : 'no subgroups';
  console.log(`  ${report.adapter}: ${sub}; engine subgroup kernels ${report.engineSubgroupSize ? `on (${report.engineSubgroupSize} lanes)` : 'off (they need at least 8 lanes)'}; ` +
    `${report.limits.maxComputeInvocationsPerWorkgroup} invocations per workgroup, ${report.limits.maxStorageBufferBindingSize / 2 ** 20} MiB per binding`);
  for (const r of report.results) console.log(`  ${r.ok ? '✓' : '✘'} ${r.name} [${r.mode}] ${(r.ms / 1000).toFixed(1)} s${r.error ? `: ${r.error}` : ''}`);
  const names = await page.evaluate(() => (window as unknown as { moefusionKernelChecks: { names: string[] } }).moefusionKernelChecks.names);
  assert.equal(names.filter((n) => !report.results.some((r) => r.name === n)), [], 'every family ran');
  if (report.engineSubgroupSize) assert.ok(report.results.some((r) => r.mode.startsWith('subgroups')) && report.results.some((r) => r.mode === 'portable'), 'the subgroup and the portable kernels ran');
  const failed = report.results.filter((r) => !r.ok);
  assert.equal(failed.map((r) => `${r.name} [${r.mode}]: ${r.error}`), [], 'every kernel check passes');
  assert.equal(errors, [], 'no uncaught page errors');
});

t.run();
