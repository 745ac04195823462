/**
 * Times the demo page in Chromium against the Node engine on the same pixels (the browser figures of docs/browser.md):
 * for each size, the page fuses the sample pair twice (the first run compiles the kernels) and Node's Fuser fuses
 * the page's downscaled inputs twice; both outputs are compared. Beside the page, in another tab of the same
 * browser, onnxruntime-web (WebGPU) runs the exported network (`exportOnnx`) on the same inputs and Att, its runs
 * taking turns with the page's; its output is compared with Node's too.
 *   npx tsx scripts/web-timing.ts [--sizes 160x120,640x480] [--screenshot results/web-page.png] [--no-ort]
 * Needs /usr/bin/chromium (scripts/setup.sh installs it). Several minutes on SwiftShader.
 */
import { chromium, type Page } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildWeb } from './build-web.ts';
import { startWebServer } from './serve-web.ts';
import { Fuser } from '../src/model/fuser.ts';
import { shutdownEngine } from '../src/tensor/engine.ts';
import { adapterName } from '../src/runtime/device.ts';
import { engine } from '../src/tensor/engine.ts';
import { exportOnnx } from '../src/model/onnx-export.ts';
import { infraredSaliency } from '../src/model/saliency.ts';
import { maxRelError } from '../src/check/compare.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (opt('--sizes') ?? '160x120,640x480').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const screenshot = opt('--screenshot');
const withOrt = !args.includes('--no-ort');
const root = resolve(import.meta.dirname, '..');
const weights = join(root, 'weights/moefusion.safetensors');

type Pixels = { width: number; height: number; data: number[] };
const rgba = (i: Pixels) => ({ width: i.width, height: i.height, data: Uint8ClampedArray.from(i.data) });
interface PageRun {
  ms: number;
  adapter: string;
  ir: Pixels;
  vi: Pixels;
  fused: number[];
}

/** One run of onnxruntime-web (WebGPU) in a tab: its time (and the session's, the first time) and output, or its error. */
interface OrtRun {
  ms: number;
  sessionMs?: number;
  fused?: number[];
  error?: string;
}

/**
 * Runs in the tab, as source text (a function compiled here would carry the bundler's helpers): the session is made
 * on the first call and kept on window.
 */
const ORT_RUN = /* js */ `async (a) => {
  try {
    let sessionMs;
    if (!window.ortSession) {
      const t0 = performance.now();
      const ort = await import('/ort/ort.webgpu.bundle.min.mjs');
      ort.env.wasm.numThreads = 1; // the page is not cross-origin isolated: no threads
      window.ortLib = ort;
      window.ortSession = await ort.InferenceSession.create('/ort-page/model.onnx', { executionProviders: ['webgpu'] });
      sessionMs = performance.now() - t0;
    }
    const feed = (d) => new window.ortLib.Tensor('float32', Float32Array.from(d), [1, 1, a.height, a.width]);
    const t0 = performance.now();
    const out = await window.ortSession.run({ ir: feed(a.ir), vis: feed(a.vis), attention: feed(a.attention) });
    return { ms: performance.now() - t0, sessionMs, fused: Array.from(out.fused.data) };
  } catch (e) {
    return { ms: NaN, error: String(e && e.message ? e.message : e).split('\\n')[0] };
  }
}`;

async function ortRun(page: Page, input: { ir: number[]; vis: number[]; attention: number[]; width: number; height: number }): Promise<OrtRun> {
  if (!(await page.evaluate('typeof window.ortRun === "function"'))) await page.addScriptTag({ content: `window.ortRun = ${ORT_RUN};` });
  return page.evaluate((a) => (window as unknown as { ortRun(x: typeof a): Promise<OrtRun> }).ortRun(a), input);
}

await buildWeb();
const ortDir = mkdtempSync(join(tmpdir(), 'moefusion-ort-web-'));
if (withOrt) {
  writeFileSync(join(ortDir, 'model.onnx'), await exportOnnx(weights));
  writeFileSync(join(ortDir, 'index.html'), '<!doctype html><title>onnxruntime-web</title>');
}
const server = await startWebServer({ port: 0, mounts: { '/ort/': join(root, 'node_modules/onnxruntime-web/dist'), '/ort-page/': ortDir } });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const fuser = await Fuser.create({ weights });
const rows: string[] = [];
try {
  for (const [w, h] of sizes) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    await page.goto(`${server.url}?sample&size=${w}x${h}&autorun`);
    const ortPage = withOrt ? await browser.newPage() : null;
    await ortPage?.goto(server.url.replace(/\/web\/$/, '/ort-page/'));
    const runs: PageRun[] = [];
    const ortRuns: OrtRun[] = [];
    let ortInput: Parameters<typeof ortRun>[1] | null = null;
    for (let n = 1; n <= 2; n++) {
      if (n === 2) await page.click('#fuse');
      await page.waitForFunction(`window.moefusionDemo.runs >= ${n} && window.moefusionDemo.state !== 'fusing' || window.moefusionDemo.state === 'error'`, null, { timeout: 1_800_000, polling: 500 });
      const r = (await page.evaluate(`(() => {
        const d = window.moefusionDemo;
        if (d.state === 'error') return { error: d.error };
        const r = d.lastRun;
        const img = (i) => ({ width: i.width, height: i.height, data: Array.from(i.data) });
        return { ms: r.ms, adapter: r.adapter.name, ir: img(r.ir), vi: img(r.vi), fused: Array.from(r.fused) };
      })()`)) as PageRun & { error?: string };
      if (r.error) throw new Error(`the page failed: ${r.error}`);
      runs.push(r);
      if (ortPage) {
        // onnxruntime-web takes its turn on the page's own inputs, with the Att the page used (the weights' saliency).
        if (!ortInput) {
          const [i, v] = await fuser.planes(rgba(r.ir), rgba(r.vi));
          ortInput = { ir: Array.from(i.gray), vis: Array.from(v.gray), attention: Array.from(infraredSaliency(i.gray)), width: i.width, height: i.height };
        }
        ortRuns.push(await ortRun(ortPage, ortInput));
      }
    }
    await ortPage?.close();
    if (screenshot && w === sizes[sizes.length - 1][0] && h === sizes[sizes.length - 1][1]) await page.screenshot({ path: resolve(screenshot), fullPage: true });
    await page.close();
    const node: number[] = [];
    let out: Float32Array | null = null;
    for (let n = 0; n < 2; n++) {
      const t0 = performance.now();
      out = (await fuser.fuse(rgba(runs[0].ir), rgba(runs[0].vi))).data;
      node.push(performance.now() - t0);
    }
    let num = 0;
    let den = 0;
    for (let i = 0; i < out!.length; i++) {
      num = Math.max(num, Math.abs(out![i] - runs[1].fused[i]));
      den = Math.max(den, Math.abs(out![i]));
    }
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const line = `${w}×${h}: page on ${runs[0].adapter} ${s(runs[0].ms)} first, ${s(runs[1].ms)} second; Node on ${adapterName(engine().rt.handle.summary)} ${s(node[0])} first, ${s(node[1])} second; max relative difference ${(num / den).toExponential(2)}`;
    console.log(line);
    rows.push(line);
    if (ortRuns.length) {
      const failed = ortRuns.find((o) => o.error);
      const last = ortRuns[ortRuns.length - 1];
      const ortLine = failed
        ? `${w}×${h}: onnxruntime-web (WebGPU) failed: ${failed.error}`
        : `${w}×${h}: onnxruntime-web (WebGPU) ${s(ortRuns[0].ms)} first (session ${s(ortRuns[0].sessionMs!)} before it), ${s(last.ms)} second; ` +
          `page second / onnxruntime-web second ${(runs[1].ms / last.ms).toFixed(2)}; max relative difference from Node ${maxRelError(last.fused!, out!).toExponential(2)}`;
      console.log(ortLine);
      rows.push(ortLine);
    }
  }
} finally {
  rmSync(ortDir, { recursive: true, force: true });
  fuser.dispose();
  shutdownEngine();
  await browser.close();
  await server.close();
}
