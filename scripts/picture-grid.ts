/**
 * A picture grid for RESULTS.md: for a few pairs, one row each of IR | visible | every peer | the training-free
 * multi-scale fusion | ours, all scaled to one row height. Usage: tsx scripts/picture-grid.ts SHARED_DATA RESULTS_DIR
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeImage } from '../src/io/image.ts';

const [data, out] = process.argv.slice(2);
const ROW = 160;
const GAP = 4;

async function tile(path: string): Promise<{ data: Buffer; width: number }> {
  const { data, info } = await sharp(path).resize({ height: ROW }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width };
}

async function grid(set: string, names: string[], file: string): Promise<void> {
  const peers = readdirSync(join(data, set, 'fused')).sort();
  const rows: Array<Array<{ data: Buffer; width: number }>> = [];
  for (const name of names) {
    const find = (dir: string) => readdirSync(dir).find((f) => f.replace(/\.[^.]+$/, '') === name.replace(/\.[^.]+$/, ''));
    const cells = [join(data, set, 'ir', name), join(data, set, 'vi', name)];
    for (const p of peers) cells.push(join(data, set, 'fused', p, find(join(data, set, 'fused', p))!));
    for (const ours of ['multiscale', 'MoE-Fusion']) cells.push(join(out, set, ours, find(join(out, set, ours))!));
    rows.push(await Promise.all(cells.filter(existsSync).map(tile)));
  }
  const width = Math.max(...rows.map((r) => r.reduce((w, c) => w + c.width + GAP, -GAP)));
  const height = rows.length * (ROW + GAP) - GAP;
  const canvas = new Uint8Array(width * height * 3).fill(255);
  rows.forEach((row, r) => {
    let x0 = 0;
    for (const c of row) {
      for (let y = 0; y < ROW; y++) canvas.set(c.data.subarray(y * c.width * 3, (y + 1) * c.width * 3), ((r * (ROW + GAP) + y) * width + x0) * 3);
      x0 += c.width + GAP;
    }
  });
  await writeImage(file, canvas, width, height, 3);
  console.log(`${file}: rows ${names.join(', ')}; columns IR, visible, ${peers.join(', ')}, multi-scale (no training), MoE-Fusion (ours)`);
}

await grid('tno', ['01.png', '07.png', '21.png', '35.png'], join(out, 'grid-tno.png'));
const vifb = readdirSync(join(data, 'vifb', 'ir')).sort();
await grid('vifb', [vifb[0], vifb[5], vifb[12]], join(out, 'grid-vifb.png'));
