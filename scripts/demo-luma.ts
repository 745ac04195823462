/**
 * Is a fused picture darker or flatter than the visible photo, and are the infrared targets still bright? For a pair
 * and fused images of it: the mean and standard deviation of each image's luma (BT.601, 0-255), and the mean of each
 * over the infrared image's hottest 2% of pixels (the people and cars of a night scene).
 *
 * With --strip FILE, also writes the images side by side (infrared, visible, then the fused ones) as one PNG.
 *
 *   npx tsx scripts/demo-luma.ts [--strip FILE] samples/ir/00537D.png samples/vi/00537D.png out/fused.png [more fused]
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { writeFileAtomic } from '../src/io/atomic.ts';

const { values, positionals } = parseArgs({ options: { strip: { type: 'string' } }, allowPositionals: true });
const [irFile, visFile, ...fused] = positionals;
if (!irFile || !visFile || !fused.length) {
  console.error('usage: npx tsx scripts/demo-luma.ts [--strip FILE] IR VIS FUSED...');
  process.exit(2);
}

/** BT.601 luma of an image, 0-255, as sharp decodes it. */
async function luma(file: string): Promise<{ data: Float64Array; width: number; height: number }> {
  const { data, info } = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * info.channels;
    out[i] = info.channels >= 3 ? 0.299 * data[p] + 0.587 * data[p + 1] + 0.114 * data[p + 2] : data[p];
  }
  return { data: out, width: info.width, height: info.height };
}

const ir = await luma(irFile);
const threshold = [...ir.data].sort((a, b) => a - b)[Math.floor(0.98 * ir.data.length)];
const hot = ir.data.map((v) => (v >= threshold ? 1 : 0));

console.log('| image | mean luma | SD | mean over the hottest 2% of infrared |');
console.log('|---|---:|---:|---:|');
for (const file of [irFile, visFile, ...fused]) {
  const img = await luma(file);
  if (img.width !== ir.width || img.height !== ir.height) throw new Error(`${file}: ${img.width}×${img.height}, the infrared image is ${ir.width}×${ir.height}`);
  const n = img.data.length;
  const mean = img.data.reduce((a, v) => a + v, 0) / n;
  const sd = Math.sqrt(img.data.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  let hotSum = 0;
  let hotCount = 0;
  img.data.forEach((v, i) => {
    hotSum += v * hot[i];
    hotCount += hot[i];
  });
  console.log(`| ${file} | ${mean.toFixed(1)} | ${sd.toFixed(1)} | ${(hotSum / hotCount).toFixed(1)} |`);
}

if (values.strip) {
  const files = [irFile, visFile, ...fused];
  const [GAP, HEIGHT] = [4, 240];
  const width = Math.round((ir.width * HEIGHT) / ir.height);
  const tiles = await Promise.all(files.map((f) => sharp(f).rotate().removeAlpha().toColourspace('srgb').resize(width, HEIGHT).png().toBuffer()));
  const strip = sharp({ create: { width: files.length * (width + GAP) - GAP, height: HEIGHT, channels: 3, background: '#ffffff' } })
    .composite(tiles.map((input, i) => ({ input, left: i * (width + GAP), top: 0 })));
  await writeFileAtomic(values.strip, await strip.png().toBuffer());
}
