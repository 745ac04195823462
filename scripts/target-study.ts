/**
 * Training targets scored as if they were fused images: what the pixel loss would teach the network, measured on the
 * validation pairs of the training sets (the same seeded split as `train`), whole frames, `tang` metrics, 8-bit as
 * saved, under both output ranges. A network reproduces its target closely, so a target's scores bound what training
 * towards it can reach; this chooses the target without a training run per candidate. Never run it on TNO or VIFB.
 *
 *   npx tsx scripts/target-study.ts [--val-fraction 0.1] [--seed 0] [--json FILE] DATASET...
 */
import { parseArgs } from 'node:util';
import { openDataset, splitPairs } from '../src/io/dataset.ts';
import { readImage } from '../src/io/image.ts';
import { toGray01, to8bit } from '../src/io/color.ts';
import { applyRange, OUTPUT_RANGES } from '../src/io/output-range.ts';
import { getProtocol } from '../src/metrics/protocols.ts';
import { VALIDATION_METRICS } from '../src/train/validation.ts';
import { TARGETS } from '../src/train/options.ts';
import { targetImage, type TargetSources } from '../src/train/targets.ts';
import { multiscaleFusion } from '../src/model/classic-fusion.ts';
import { infraredSaliency } from '../src/model/saliency.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';

const { values, positionals } = parseArgs({
  options: { 'val-fraction': { type: 'string', default: '0.1' }, seed: { type: 'string', default: '0' }, json: { type: 'string' } },
  allowPositionals: true,
});
if (!positionals.length) throw new Error('usage: target-study.ts [--val-fraction X] [--seed N] [--json FILE] DATASET...');
const pairs = positionals.flatMap((root) => openDataset(root).pairs);
const { val } = splitPairs(pairs, { valFraction: Number(values['val-fraction']), seed: Number(values.seed) });
console.error(`${val.length} validation pairs of ${pairs.length}`);

/** The targets `train --target` offers (reference with the infrared saliency as M), with detail gains, and a coarser pyramid. */
const CANDIDATES: Array<[string, (s: TargetSources) => Float32Array]> = [
  ...TARGETS.map((t) => [t, (s: TargetSources) => targetImage(t, s)] as [string, (s: TargetSources) => Float32Array]),
  ['multiscale, --detail-gain 1.25', (s) => targetImage('multiscale', s, { detailGain: 1.25 })],
  ['multiscale, --detail-gain 1.5', (s) => targetImage('multiscale', s, { detailGain: 1.5 })],
  ['multiscale, σ up to 16', (s) => multiscaleFusion(s.ir, s.vis, s.width, s.height, { sigmas: [1, 2, 4, 8, 16] })],
];

type Row = Record<string, number>;
const sums = new Map<string, Row>();
const tang = getProtocol('tang');
const gray8 = (v: Float32Array, width: number, height: number) => ({ width, height, channels: 1 as const, bitDepth: 8 as const, data: to8bit(v) });
for (const p of val) {
  const [irImg, viImg] = [await readImage(p.ir), await readImage(p.vi)];
  const { width, height } = irImg;
  const [ir, vis] = [toGray01(irImg, 'first'), toGray01(viImg, 'luma')];
  const sources = { ir, vis, foreground: infraredSaliency(ir), width, height };
  for (const [name, make] of CANDIDATES) {
    const t = make(sources);
    for (const range of OUTPUT_RANGES) {
      const key = `${name} / ${range}`;
      const scores = tang.score(gray8(applyRange(t, range), width, height), gray8(ir, width, height), gray8(vis, width, height), [...VALIDATION_METRICS]);
      const row = sums.get(key) ?? {};
      for (const m of VALIDATION_METRICS) row[m] = (row[m] ?? 0) + scores[m] / val.length;
      sums.set(key, row);
    }
  }
}
const header = `| target / range | ${VALIDATION_METRICS.join(' | ')} |`;
console.log([header, header.replace(/[^|]+/g, '---'), ...[...sums].map(([k, r]) => `| ${k} | ${VALIDATION_METRICS.map((m) => r[m].toFixed(m === 'SD' || m === 'SF' ? 2 : 3)).join(' | ')} |`)].join('\n'));
if (values.json) await writeFileAtomic(values.json, JSON.stringify({ pairs: val.map((p) => p.name), scores: Object.fromEntries(sums) }, null, 1) + '\n');
