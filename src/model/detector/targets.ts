/**
 * Training targets of the CenterNet-style head, built on the CPU from the boxes of a batch (boxes are data, so
 * nothing is read back from the GPU). Each box goes to the one FPN level whose scale suits it best (its longer side
 * closest to 8 cells), where it marks its centre cell with 1 and spreads a Gaussian around it in its class's heat
 * map (penalty-reduced negatives), and sets the log-size and sub-cell offset targets at the centre cell.
 */
import { boxMask, scaleBoxes, type Box } from '../../io/boxes.ts';
import { LEVEL_STRIDES } from './config.ts';

export interface LevelTargets {
  stride: number;
  h: number;
  w: number;
  /** (B,C,h,w): 1 at object centres. */
  positive: Float32Array;
  /** (B,C,h,w): (1 − y)⁴ where the Gaussian target y < 1, 0 at centres (CenterNet's negative weights). */
  negativeWeight: Float32Array;
  /** (B,1,h,w): 1 at centres of any class. */
  centre: Float32Array;
  /** (B,2,h,w): log(box width / stride), log(box height / stride) at centres. */
  size: Float32Array;
  /** (B,2,h,w): centre position within its cell, in [0,1), at centres. */
  offset: Float32Array;
  /** (B,1,h,w): 1 in cells whose centre lies inside any box (of any level): the spatial attention's target. */
  objects: Float32Array;
}

export interface DetectionTargets {
  levels: LevelTargets[];
  /** Number of boxes that received a centre (normalises the losses). */
  positives: number;
}

/** Spatial sizes of P2, P3, P4 for an H×W image (each stage pools 2×2, dropping odd rows/columns). */
export function levelSizes(H: number, W: number): Array<[number, number]> {
  const sizes: Array<[number, number]> = [];
  let [h, w] = [Math.floor(Math.floor(H / 2) / 2), Math.floor(Math.floor(W / 2) / 2)];
  for (let l = 0; l < LEVEL_STRIDES.length; l++) {
    sizes.push([h, w]);
    [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
  }
  return sizes;
}

/** The level whose stride makes the box's longer side closest to 8 cells (log scale). */
export function levelFor(box: Box): number {
  const side = Math.max(box.x1 - box.x0, box.y1 - box.y0);
  let best = 0;
  LEVEL_STRIDES.forEach((s, l) => {
    if (Math.abs(Math.log2(side / (8 * s))) < Math.abs(Math.log2(side / (8 * LEVEL_STRIDES[best])))) best = l;
  });
  return best;
}

export function buildTargets(boxesPerImage: Box[][], H: number, W: number, classes: string[]): DetectionTargets {
  const B = boxesPerImage.length;
  const C = classes.length;
  const heats: Float32Array[] = [];
  const levels: LevelTargets[] = levelSizes(H, W).map(([h, w], l) => {
    heats.push(new Float32Array(B * C * h * w));
    return {
      stride: LEVEL_STRIDES[l],
      h,
      w,
      positive: new Float32Array(B * C * h * w),
      negativeWeight: new Float32Array(B * C * h * w),
      centre: new Float32Array(B * h * w),
      size: new Float32Array(B * 2 * h * w),
      offset: new Float32Array(B * 2 * h * w),
      objects: new Float32Array(B * h * w),
    };
  });
  let positives = 0;
  boxesPerImage.forEach((boxes, b) => {
    for (const t of levels) t.objects.set(boxMask(scaleBoxes(boxes, t.w * t.stride, t.h * t.stride, t.w, t.h), t.w, t.h), b * t.h * t.w);
    for (const box of boxes) {
      const c = classes.indexOf(box.label);
      if (c < 0) throw new Error(`box label "${box.label}" is not one of the detector's classes (${classes.join(', ')})`);
      const bw = box.x1 - box.x0;
      const bh = box.y1 - box.y0;
      if (!(bw > 0 && bh > 0)) continue;
      const t = levels[levelFor(box)];
      const { stride: s, h, w } = t;
      const fx = (box.x0 + box.x1) / 2 / s;
      const fy = (box.y0 + box.y1) / 2 / s;
      const cx = Math.floor(fx);
      const cy = Math.floor(fy);
      if (cx < 0 || cy < 0 || cx >= w || cy >= h) continue; // centre in the rows/columns the pooling dropped
      positives++;
      const heat = heats[levels.indexOf(t)];
      const plane = (b * C + c) * h * w;
      // Gaussian of the box's shape on the grid (σ = a sixth of the side, at least a third of a cell).
      const sx = Math.max(bw / s / 6, 1 / 3);
      const sy = Math.max(bh / s / 6, 1 / 3);
      const rx = Math.ceil(3 * sx);
      const ry = Math.ceil(3 * sy);
      for (let y = Math.max(0, cy - ry); y <= Math.min(h - 1, cy + ry); y++)
        for (let x = Math.max(0, cx - rx); x <= Math.min(w - 1, cx + rx); x++) {
          const g = Math.exp(-((x - cx) ** 2) / (2 * sx * sx) - (y - cy) ** 2 / (2 * sy * sy));
          const i = plane + y * w + x;
          if (g > heat[i]) heat[i] = g;
        }
      heat[plane + cy * w + cx] = 1;
      t.positive[plane + cy * w + cx] = 1;
      const cell = cy * w + cx;
      t.centre[b * h * w + cell] = 1;
      t.size[(b * 2) * h * w + cell] = Math.log(bw / s);
      t.size[(b * 2 + 1) * h * w + cell] = Math.log(bh / s);
      t.offset[(b * 2) * h * w + cell] = fx - cx;
      t.offset[(b * 2 + 1) * h * w + cell] = fy - cy;
    }
  });
  levels.forEach((t, l) => {
    const heat = heats[l];
    for (let i = 0; i < heat.length; i++) t.negativeWeight[i] = t.positive[i] ? 0 : (1 - heat[i]) ** 4;
  });
  return { levels, positives };
}
