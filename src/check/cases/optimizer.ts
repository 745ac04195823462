/**
 * Adam cases (src/kernels/optimizer.ts): three steps (the last under a changed learning rate) on parameters whose
 * sizes are and are not multiples of 4 (the kernels read vec4s when they can), Adam with and without weight decay
 * and AdamW, against torch.optim's formulas in float64 from the same float32 start.
 */
import { Tensor, parameter } from '../../tensor/tensor.ts';
import { Adam, type AdamOptions } from '../../optim/optimizer.ts';
import { compareValues, type Comparison } from '../compare.ts';
import { ReferenceAdam } from '../reference/optimizer.ts';
import { family, GRADIENT_TOLERANCE, size, type CaseFlags } from './family.ts';

const MOMENT_TOLERANCE = 2e-6;

export interface AdamCase extends CaseFlags {
  shapes: number[][];
  opts: Required<AdamOptions>;
}

/** Sizes that are and are not multiples of 4. */
export const ADAM_SHAPES = [[13, 17], [1], [4099], [2, 3, 5, 7], [6, 10], [4100]];
export const ADAM_DEFAULTS: Required<AdamOptions> = { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, decoupled: false };

export const ADAM_CASES: AdamCase[] = [
  { shapes: ADAM_SHAPES, opts: ADAM_DEFAULTS },
  { shapes: ADAM_SHAPES, opts: { ...ADAM_DEFAULTS, weightDecay: 0.1, betas: [0.8, 0.95], eps: 1e-6 } },
  { shapes: ADAM_SHAPES, opts: { ...ADAM_DEFAULTS, weightDecay: 0.05, decoupled: true } },
  { shapes: [[1031]], opts: { ...ADAM_DEFAULTS, lr: 0.05, weightDecay: 0.01 }, selftest: true, quick: true },
];

const describe = (c: AdamCase) => `${c.opts.decoupled ? 'AdamW' : 'Adam'} lr ${c.opts.lr} betas ${c.opts.betas} eps ${c.opts.eps} decay ${c.opts.weightDecay}, ${c.shapes.length} tensors`;

export const adamFamily = family('Adam step', 'single', 99, ADAM_CASES, describe, async (c, rng) => {
  const init = c.shapes.map((s) => rng.normal(size(s)));
  const params = init.map((d, i) => parameter(Tensor.fromArray(d, c.shapes[i]), `p${i}`));
  const refs = init.map((d) => new ReferenceAdam(Float64Array.from(d), c.opts));
  const adam = new Adam(params, c.opts);
  for (const lr of [c.opts.lr, c.opts.lr, c.opts.lr * 0.3]) {
    const grads = params.map((p) => rng.normal(p.size, 0.5));
    params.forEach((p, i) => {
      p.grad?.dispose();
      p.grad = Tensor.fromArray(grads[i], p.shape);
    });
    adam.lr = lr;
    adam.step();
    refs.forEach((r, i) => r.update(grads[i], lr));
  }
  const state = await adam.exportState();
  const list: Comparison[] = [];
  for (const [i, p] of params.entries()) {
    const got = await p.data();
    // The change itself (p − p0), so that a wrong step is not hidden behind the size of p.
    list.push(compareValues(`parameter ${i} change after 3 steps`, got.map((x, j) => x - init[i][j]), refs[i].x.map((x, j) => x - init[i][j]), c.tol ?? GRADIENT_TOLERANCE));
    // The moments are a few float32 roundings away from float64, element by element.
    list.push(compareValues(`first moment ${i}`, state.m[i], refs[i].m, MOMENT_TOLERANCE), compareValues(`second moment ${i}`, state.v[i], refs[i].v, MOMENT_TOLERANCE));
  }
  adam.dispose();
  for (const p of params) p.dispose();
  return list;
});
