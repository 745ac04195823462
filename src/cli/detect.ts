/**
 * `moefusion detect (--data DIR [--split S] | --ir PATH --vi PATH) --out DIR [--weights FILE]`: runs the auxiliary
 * detectors of a weights file trained with `--attention detector`. Writes DIR/detections.json (per pair the boxes of
 * the visible detector, the infrared one and both merged), one picture per pair (infrared with its boxes | visible
 * with its boxes | the fusion network's Att with the merged boxes), and, when the data has boxes, the VOC mAP@0.5
 * and COCO mAP@[.5:.95] per class in DIR/map.json and on the console (scored on all boxes above 0.05).
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { Fuser, checkFits, type DetectResult } from '../model/fuser.ts';
import { readImage, writeImage } from '../io/image.ts';
import { toGray01, to8bit } from '../io/color.ts';
import { openDataset, type ImagePair } from '../io/dataset.ts';
import type { Box, BoxSource } from '../io/boxes.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { attentionOverlay, drawBoxes, grayToRgb } from '../io/draw-boxes.ts';
import { sideBySide } from '../io/plot.ts';
import { evaluateDetections, formatDetectionTable, type ImageDetections } from '../metrics/detection-map.ts';
import { UsageError, UserError } from './errors.ts';
import { createProgress } from './progress.ts';
import { checkOutputs } from './outputs.ts';
import { DEFAULT_WEIGHTS } from './defaults.ts';
import { checkPairSizes, checkWeightsFile, pairsOf } from './inputs.ts';

/** Boxes above this score enter the mAP, whatever --score shows. */
const MAP_SCORE_THRESHOLD = 0.05;

interface DetectArgs {
  data?: string;
  split?: string;
  ir?: string;
  vi?: string;
  out: string;
  weights: string;
  score: number;
  iou: number;
}

/** A number in [0, 1], as commander parses --score and --iou. */
const unitInterval = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x >= 0 && x <= 1)) throw new UsageError(`${flag} ${v}: expected a number in [0, 1]`);
  return x;
};

/** The pairs to run on, with their boxes when the data has any. */
function pairsFrom(a: DetectArgs): { pairs: ImagePair[]; boxes: BoxSource | null } {
  if (a.data) {
    if (a.ir || a.vi) throw new UsageError('give either --data or --ir and --vi, not both');
    const ds = openDataset(a.data, { split: a.split });
    return { pairs: ds.pairs, boxes: ds.boxes };
  }
  if (!a.ir || !a.vi) throw new UsageError('give --data DIR, or --ir and --vi (files or folders)');
  return { pairs: pairsOf(a.ir, a.vi).pairs, boxes: null };
}

function hostBoxes(r: DetectResult) {
  const plain = (ds: DetectResult['vis']) => ds.map(({ label, score, x0, y0, x1, y1 }) => ({ label, score: +score.toFixed(5), x0: +x0.toFixed(2), y0: +y0.toFixed(2), x1: +x1.toFixed(2), y1: +y1.toFixed(2) }));
  return { vis: plain(r.vis), ir: plain(r.ir), both: plain(r.both) };
}

export async function runDetect(a: DetectArgs): Promise<void> {
  const { score: scoreThreshold, iou: iouThreshold } = a;
  checkWeightsFile(a.weights);
  const { pairs, boxes } = pairsFrom(a);
  if (!pairs.length) throw new UserError('no infrared/visible pairs found');
  // DIR is created with its first file.
  checkOutputs(
    [{ flag: '--out', path: a.out, kind: 'folder', files: [...pairs.map((p) => `${p.name}.png`), 'detections.json', 'map.json'] }],
    [
      a.data && { flag: '--data', path: a.data },
      a.ir && { flag: '--ir', path: a.ir },
      a.vi && { flag: '--vi', path: a.vi },
      { flag: '--weights', path: a.weights },
      ...pairs.flatMap((p) => [{ flag: a.data ? '--data' : '--ir', path: p.ir }, { flag: a.data ? '--data' : '--vi', path: p.vi }]),
    ],
  );
  const fuser = await Fuser.create({ weights: a.weights });
  try {
    if (!fuser.detector) throw new UserError(`--weights ${a.weights} carries no detector: train one with \`moefusion train --attention detector\``);
    await checkPairSizes(pairs, checkFits);
    const classes = fuser.detector.config.classes;
    const results: Record<string, ReturnType<typeof hostBoxes>> = {};
    const scored: Record<'vis' | 'ir' | 'both', ImageDetections[]> = { vis: [], ir: [], both: [] };
    const bar = createProgress(pairs.length, 'detecting');
    for (const p of pairs) {
      const [ir, vi] = [await readImage(p.ir), await readImage(p.vi)];
      const [w, h] = [ir.width, ir.height];
      const [irGray, viGray] = [toGray01(ir, 'first'), toGray01(vi, 'luma')];
      // mAP is scored on every box above a low threshold (a precision-recall curve needs the weak ones too);
      // the JSON and the pictures keep those above --score.
      const all = await fuser.detect({ width: w, height: h, data: irGray }, { width: w, height: h, data: viGray }, { scoreThreshold: Math.min(scoreThreshold, MAP_SCORE_THRESHOLD), iouThreshold });
      const keep = (ds: DetectResult['vis']) => ds.filter((d) => d.score >= scoreThreshold);
      const r: DetectResult = { vis: keep(all.vis), ir: keep(all.ir), both: keep(all.both), attention: all.attention };
      results[p.name] = hostBoxes(r);
      const truths: Box[] | null = boxes ? boxes.read(p.name, { width: w, height: h }) : null;
      if (truths) for (const k of ['vis', 'ir', 'both'] as const) scored[k].push({ detections: all[k], truths });
      const [ir8, vi8] = [to8bit(irGray), to8bit(viGray)];
      const strip = sideBySide(
        [drawBoxes(grayToRgb(ir8, w, h), r.ir, classes), drawBoxes(grayToRgb(vi8, w, h), r.vis, classes), drawBoxes(attentionOverlay(vi8, r.attention, w, h), r.both, classes)].map(
          (img) => ({ ...img, channels: 3 as const }),
        ),
      );
      await writeImage(join(a.out, `${p.name}.png`), strip.data, strip.width, strip.height, 3);
      bar.tick();
    }
    bar.stop();
    await writeFileAtomic(join(a.out, 'detections.json'), JSON.stringify({ classes, scoreThreshold, iouThreshold, images: results }, null, 1));
    if (boxes) {
      const maps = Object.fromEntries((['both', 'vis', 'ir'] as const).map((k) => [k, evaluateDetections(scored[k], { classes })]));
      await writeFileAtomic(join(a.out, 'map.json'), JSON.stringify(maps, null, 1));
      for (const k of ['both', 'vis', 'ir'] as const) console.log(`\n${k === 'both' ? 'both detectors' : `${k} detector`}:\n${formatDetectionTable(maps[k])}`);
    }
    console.log(`detected ${pairs.length} pair(s) → ${a.out}`);
  } finally {
    fuser.dispose();
  }
}

export function detectCommand(): Command {
  return new Command('detect')
    .description('run the auxiliary detectors of a weights file (trained with --attention detector): boxes, pictures, mAP')
    .option('--data <dir>', 'dataset folder (with labels: mAP is reported)')
    .option('--split <name>', 'split folder inside the dataset')
    .option('--ir <path>', 'infrared image or folder (instead of --data)')
    .option('--vi <path>', 'visible image or folder (instead of --data)')
    .requiredOption('--out <dir>', 'output folder: detections.json, pictures, map.json')
    .option('--weights <file>', 'weights with a detector (safetensors)', DEFAULT_WEIGHTS)
    .option('--score <x>', 'score threshold', unitInterval('--score'), 0.3)
    .option('--iou <x>', 'class-wise NMS IoU threshold', unitInterval('--iou'), 0.5)
    .action(async (opts: DetectArgs) => runDetect(opts));
}
