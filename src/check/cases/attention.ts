/**
 * Attention cases (src/kernels/attention.ts): odd shapes, the subgroup kernels' block layouts (D = Dv = 32 one row
 * per block with vec4 loads, D = 18 / Dv = 12 four rows, D = 64 / Dv = 48 two rows; D = 128 takes the portable
 * kernels on both paths), additive masks of several broadcast shapes (−inf and −1e9), causal, both; forward and the
 * gradients of q, k and v.
 */
import { Tensor } from '../../tensor/tensor.ts';
import { backward } from '../../autograd/tape.ts';
import { attention } from '../../ops/index.ts';
import { compareValues } from '../compare.ts';
import { attentionRef, type AttentionCase as RefCase } from '../reference/attention.ts';
import { compareTensor, family, FORWARD_TOLERANCE, gradOf, GRADIENT_TOLERANCE, leaf, size, type CaseFlags, type Timing } from './family.ts';

/** Batch B, H heads, Lq queries, Lk keys of D (values of Dv); `mask`: a random mask's shape, `blocked` at about a quarter of it (−inf by default). */
export interface AttentionCase extends CaseFlags, Omit<RefCase, 'mask'> {
  mask?: number[];
  blocked?: number;
}

const ODD = { B: 2, H: 3, Lq: 17, Lk: 29, D: 7, Dv: 5 };

export const ATTENTION_CASES: AttentionCase[] = [
  { ...ODD, quick: true },
  { B: 1, H: 1, Lq: 1, Lk: 1, D: 1, Dv: 1 },
  { B: 1, H: 2, Lq: 131, Lk: 3, D: 16, Dv: 9, scale: 0.3 }, // Lq past one workgroup, own scale
  { B: 1, H: 2, Lq: 70, Lk: 45, D: 32, Dv: 32, quick: true },
  { B: 2, H: 1, Lq: 9, Lk: 66, D: 18, Dv: 12, quick: true },
  { B: 1, H: 1, Lq: 65, Lk: 19, D: 64, Dv: 48, quick: true },
  { B: 1, H: 1, Lq: 67, Lk: 83, D: 128, Dv: 128 },
  { ...ODD, mask: [17, 29] },
  { ...ODD, mask: [2, 1, 1, 29], blocked: -1e9 }, // padding mask
  { ...ODD, mask: [3, 17, 29] },
  { ...ODD, causal: true, quick: true }, // Lq < Lk
  { B: 1, H: 2, Lq: 80, Lk: 70, D: 5, Dv: 3, causal: true }, // Lq > Lk, several blocks
  { ...ODD, causal: true, mask: [17, 29], blocked: -1e9 },
  { B: 1, H: 2, Lq: 70, Lk: 75, D: 32, Dv: 32, causal: true, mask: [1, 2, 70, 75], quick: true },
  { B: 1, H: 2, Lq: 37, Lk: 45, D: 16, Dv: 16, selftest: true },
  { B: 2, H: 1, Lq: 64, Lk: 64, D: 32, Dv: 32, selftest: true },
  { B: 1, H: 1, Lq: 9, Lk: 20, D: 7, Dv: 5, selftest: true },
  { B: 1, H: 4, Lq: 1024, Lk: 1024, D: 32, Dv: 32, bench: 'only' },
];

/** The forward (the benchmark's cases have no mask). */
const attentionTiming: Timing<AttentionCase> = {
  inputs: (c, rng) => [[c.Lq, c.D], [c.Lk, c.D], [c.Lk, c.Dv]].map(([L, D]) => Tensor.fromArray(rng.normal(c.B * c.H * L * D), [c.B, c.H, L, D])),
  run: (c, [q, k, v, mask], variant) => attention(q, k, v, { mask, causal: c.causal, scale: c.scale, variant }),
  cost: (c) => ({ unit: 'flop', amount: 2 * c.B * c.H * c.Lq * c.Lk * (c.D + c.Dv) }),
};

const describe = (c: AttentionCase) =>
  `${c.B}×${c.H} heads, ${c.Lq}×${c.Lk}, D ${c.D}, Dv ${c.Dv}${c.scale ? `, scale ${c.scale}` : ''}${c.causal ? ', causal' : ''}${c.mask ? `, mask [${c.mask}]${c.blocked ? ` at ${c.blocked}` : ''}` : ''}`;

export const attentionFamily = family('attention', 'subgroups', 107, ATTENTION_CASES, describe, async (c, rng, { variant }) => {
  const q = rng.normal(c.B * c.H * c.Lq * c.D);
  const k = rng.normal(c.B * c.H * c.Lk * c.D);
  const v = rng.normal(c.B * c.H * c.Lk * c.Dv);
  const g = rng.normal(c.B * c.H * c.Lq * c.Dv);
  const mask = c.mask && { data: new Float32Array(size(c.mask)).map(() => (rng.next() < 0.25 ? (c.blocked ?? -Infinity) : 0)), shape: c.mask };
  const want = attentionRef({ ...c, mask }, q, k, v, g);
  const [qt, kt, vt] = [leaf(q, [c.B, c.H, c.Lq, c.D]), leaf(k, [c.B, c.H, c.Lk, c.D]), leaf(v, [c.B, c.H, c.Lk, c.Dv])];
  const maskT = mask && Tensor.fromArray(mask.data, mask.shape);
  const out = attentionTiming.run(c, maskT ? [qt, kt, vt, maskT] : [qt, kt, vt], variant) as Tensor;
  const list = await compareTensor('output', out, [c.B, c.H, c.Lq, c.Dv], want.out, c.tol ?? FORWARD_TOLERANCE);
  const seed = Tensor.fromArray(g, out.shape);
  backward(out, seed);
  for (const [name, t, expected] of [['dq', qt, want.dq], ['dk', kt, want.dk], ['dv', vt, want.dv]] as const) list.push(compareValues(name, await gradOf(t), expected, GRADIENT_TOLERANCE));
  for (const t of [qt, kt, vt, out, seed, maskT]) t?.dispose();
  return list;
}, attentionTiming);
