/**
 * Bilinear resize cases (src/kernels/resize.ts, align_corners=True): down and up by any factor on either axis,
 * 1-pixel maps, MoE-Fusion's gate inputs (scaledSize(…, 0.25) and 0.125), 3×4 → 40×50 (many entries per input
 * index in the backward's gathers); forward and the input gradient.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { backward } from '../../autograd/tape.ts';
import { resizeBilinear } from '../../ops/index.ts';
import { compareValues } from '../compare.ts';
import { refResize, refResizeGradPlane } from '../reference/resize.ts';
import { compareTensor, family, FORWARD_TOLERANCE, gradOf, GRADIENT_TOLERANCE, leaf, size, type CaseFlags, type Timing } from './family.ts';

/** An (N, C, H, W) map resized to `to` = [height, width]. */
export interface ResizeCase extends CaseFlags {
  x: [number, number, number, number];
  to: [number, number];
}

export const RESIZE_CASES: ResizeCase[] = [
  { x: [2, 3, 13, 17], to: [5, 7], quick: true },
  { x: [1, 2, 7, 5], to: [19, 11], quick: true },
  { x: [1, 1, 1, 1], to: [3, 4], quick: true },
  { x: [2, 1, 6, 9], to: [1, 1] },
  { x: [1, 1, 5, 1], to: [5, 3] },
  { x: [1, 2, 48, 64], to: [12, 16], quick: true },
  { x: [1, 1, 40, 56], to: [5, 7], quick: true },
  { x: [1, 2, 12, 16], to: [48, 64], quick: true },
  { x: [1, 2, 6, 5], to: [17, 12] },
  { x: [1, 1, 1, 4], to: [3, 9] },
  { x: [1, 1, 4, 3], to: [1, 1] },
  { x: [1, 2, 9, 4], to: [3, 6] },
  { x: [2, 1, 3, 29], to: [5, 2] },
  { x: [1, 1, 3, 4], to: [40, 50] },
  { x: [2, 2, 16, 16], to: [15, 20] },
  { x: [2, 3, 13, 17], to: [6, 8], selftest: true },
  { x: [1, 2, 5, 7], to: [12, 15], selftest: true },
  { x: [1, 1, 24, 32], to: [1, 5], selftest: true },
];

/** Working size: 160 channels to the global gate's 80×60 grid. */
const resizeTiming: Timing<ResizeCase> = {
  inputs: (c, rng) => [Tensor.fromArray(rng.uniform(size(c.x)), c.x)],
  run: (c, [x]) => resizeBilinear(x, c.to[0], c.to[1]),
  cost: (c) => ({ unit: 'byte', amount: 4 * c.x[0] * c.x[1] * (c.x[2] * c.x[3] + c.to[0] * c.to[1]) }),
  working: (w, h) => [{ x: [1, 160, h, w], to: [60, 80] }],
};

export const resizeFamily = family('bilinear resize', 'single', 108, RESIZE_CASES, (c) => `[${c.x}] → ${c.to[0]}×${c.to[1]}`, async (c, rng) => {
  const [n, ch, h, w] = c.x;
  const [oh, ow] = c.to;
  const x = rng.uniform(size(c.x));
  const g = rng.uniform(n * ch * oh * ow);
  const xt = leaf(x, c.x);
  const out = resizeTiming.run(c, [xt]) as Tensor;
  const list = await compareTensor('output', out, [n, ch, oh, ow], refResize(x, c.x, oh, ow), c.tol ?? FORWARD_TOLERANCE);
  const seed = Tensor.fromArray(g, out.shape);
  backward(out, seed);
  const dx = new Float64Array(x.length);
  for (let p = 0; p < n * ch; p++) dx.set(refResizeGradPlane(g, p * oh * ow, h, w, oh, ow), p * h * w);
  list.push(compareValues('gradient', await gradOf(xt), dx, GRADIENT_TOLERANCE));
  for (const t of [out, seed, xt]) t.dispose();
  return list;
}, resizeTiming);
