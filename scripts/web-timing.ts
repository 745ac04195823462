/**
 * Times the demo page in Chromium against the Node engine on the same pixels (the README's browser figures):
 * for each size, the page fuses the sample pair twice (the first run compiles the kernels) and Node's Fuser fuses
 * the page's downscaled inputs twice; both outputs are compared.
 *   npx tsx scripts/web-timing.ts [--sizes 160x120,640x480] [--screenshot results/web-page.png]
 * Needs /usr/bin/chromium (scripts/setup.sh installs it). Several minutes on SwiftShader.
 */
import { chromium } from 'playwright-core';
import { join, resolve } from 'node:path';
import { buildWeb } from './build-web.ts';
import { startWebServer } from './serve-web.ts';
import { Fuser } from '../src/model/fuser.ts';
import { shutdownEngine } from '../src/tensor/engine.ts';
import { adapterName } from '../src/runtime/device.ts';
import { engine } from '../src/tensor/engine.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const sizes = (opt('--sizes') ?? '160x120,640x480').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const screenshot = opt('--screenshot');
const root = resolve(import.meta.dirname, '..');

type Pixels = { width: number; height: number; data: number[] };
interface PageRun {
  ms: number;
  adapter: string;
  ir: Pixels;
  vi: Pixels;
  fused: number[];
}

await buildWeb();
const server = await startWebServer({ port: 0 });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const fuser = await Fuser.create({ weights: join(root, 'weights/moefusion.safetensors') });
const rows: string[] = [];
try {
  for (const [w, h] of sizes) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    await page.goto(`${server.url}?sample&size=${w}x${h}&autorun`);
    const runs: PageRun[] = [];
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
    }
    if (screenshot && w === sizes[sizes.length - 1][0] && h === sizes[sizes.length - 1][1]) await page.screenshot({ path: resolve(screenshot), fullPage: true });
    await page.close();
    const rgba = (i: Pixels) => ({ width: i.width, height: i.height, data: Uint8ClampedArray.from(i.data) });
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
  }
} finally {
  fuser.dispose();
  shutdownEngine();
  await browser.close();
  await server.close();
}
