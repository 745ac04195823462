/**
 * The kernel checks of `moefusion selftest`: each runs the engine's ops on the current adapter on small, awkward
 * shapes (odd sizes, widths that are and are not multiples of 4, more channels than a subgroup) and compares the
 * results with float64 references computed here at run time (src/check/reference/<kernel>.ts). Gradients are checked through
 * autograd, i.e. the backward kernels as training runs them.
 */
import { Tensor } from '../tensor/tensor.ts';
import { noGrad, tidy } from '../tensor/engine.ts';
import { backward } from '../autograd/tape.ts';
import { Rng } from '../util/rng.ts';
import { Adam } from '../optim/optimizer.ts';
import { attention, combineExperts, conv2d, matmul, noisyTopKGate, resizeBilinear, routedConv2d, routingTable, softmax, sum } from '../ops/index.ts';
import { compareExact, compareValues, type Comparison } from './compare.ts';
import { matmul as refMatmul, transpose } from './reference/matmul.ts';
import { refConv } from './reference/conv2d.ts';
import { refConvGrads } from './reference/conv2d-grad.ts';
import { gateRef, type GateRef } from './reference/gating.ts';
import { combineGradRef, combineRef } from './reference/combine.ts';
import { attentionRef } from './reference/attention.ts';
import { refResize, refResizeGradPlane } from './reference/resize.ts';
import { refSoftmax } from './reference/softmax.ts';
import { sumAxes } from './reference/reduce.ts';
import { ReferenceAdam } from './reference/optimizer.ts';
import { setConvAlgorithm } from '../kernels/conv2d-choice.ts';

/** One named check: runs its cases and returns every comparison it made. */
export interface SelfCheck {
  name: string;
  run(): Promise<Comparison[]>;
}

/**
 * Relative errors allowed (max|a−e| / max|e|): float32 sums of at most a few thousand terms stay near 1e-6;
 * a broken kernel is off by far more.
 */
export const FORWARD_TOLERANCE = 2e-5;
export const GRADIENT_TOLERANCE = 1e-4;

const size = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

/** A tensor that records gradients, from data. */
function leaf(data: Float32Array, shape: number[]): Tensor {
  const t = Tensor.fromArray(data, shape);
  t.requiresGrad = true;
  return t;
}

async function read(t: Tensor | null, n: number): Promise<Float32Array> {
  return t ? t.data() : new Float32Array(n);
}

function matmulCheck(): SelfCheck {
  return {
    name: 'matmul',
    async run() {
      const rng = new Rng(101);
      const list: Comparison[] = [];
      for (const [M, K, N, tA, tB] of [
        [37, 53, 29, false, false],
        [128, 256, 64, false, false],
        [33, 70, 18, true, false],
        [19, 41, 66, false, true],
      ] as Array<[number, number, number, boolean, boolean]>) {
        const a = rng.uniform(M * K);
        const b = rng.uniform(K * N);
        const out = noGrad(() => tidy(() => matmul(Tensor.fromArray(tA ? transpose(a, M, K) : a, tA ? [K, M] : [M, K]), Tensor.fromArray(tB ? transpose(b, K, N) : b, tB ? [N, K] : [K, N]), tA, tB)));
        list.push(compareValues(`${tA ? 'Aᵀ' : 'A'}·${tB ? 'Bᵀ' : 'B'} ${M}×${K}·${K}×${N}`, await out.data(), refMatmul(a, b, M, K, N), FORWARD_TOLERANCE));
        out.dispose();
      }
      return list;
    },
  };
}

function convForwardCheck(): SelfCheck {
  return {
    name: 'conv2d forward',
    async run() {
      const rng = new Rng(102);
      const list: Comparison[] = [];
      // N, Cin, Cout, H, W, K, relu
      for (const [N, Cin, Cout, H, W, K, relu] of [
        [2, 5, 7, 13, 17, 3, true],
        [1, 16, 16, 12, 20, 3, false],
        [2, 13, 17, 7, 12, 3, true],
        [1, 3, 5, 9, 11, 1, false],
        [1, 32, 8, 6, 9, 3, true],
      ] as Array<[number, number, number, number, number, number, boolean]>) {
        const x = rng.uniform(N * Cin * H * W);
        const w = rng.uniform(Cout * Cin * K * K);
        const b = rng.uniform(Cout);
        const out = noGrad(() => tidy(() => conv2d(Tensor.fromArray(x, [N, Cin, H, W]), Tensor.fromArray(w, [Cout, Cin, K, K]), Tensor.fromArray(b, [Cout]), { relu })));
        const want = refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad: (K - 1) / 2, relu });
        list.push(compareValues(`${N}×${Cin}→${Cout} ${H}×${W} k${K}${relu ? ' relu' : ''}`, await out.data(), want.data, FORWARD_TOLERANCE));
        out.dispose();
      }
      return list;
    },
  };
}

function convGradientCheck(): SelfCheck {
  return {
    name: 'conv2d gradients',
    async run() {
      const rng = new Rng(103);
      const list: Comparison[] = [];
      for (const [N, Cin, Cout, H, W, K] of [
        [2, 6, 5, 9, 12, 3],
        [1, 16, 16, 11, 16, 3],
        [2, 3, 4, 7, 5, 1],
      ]) {
        const xs = [N, Cin, H, W];
        const ws = [Cout, Cin, K, K];
        const x = rng.uniform(size(xs));
        const w = rng.uniform(size(ws));
        const b = rng.uniform(Cout);
        const g = rng.uniform(N * Cout * H * W);
        const [xt, wt, bt] = [leaf(x, xs), leaf(w, ws), leaf(b, [Cout])];
        const y = conv2d(xt, wt, bt);
        backward(y, Tensor.fromArray(g, y.shape));
        const want = refConvGrads(x, xs, w, 1, Cout, K, Array.from({ length: N }, (_, n) => [n, 0] as const), g);
        const what = `${N}×${Cin}→${Cout} ${H}×${W} k${K}`;
        list.push(compareValues(`input gradient ${what}`, await read(xt.grad, x.length), want.dx, GRADIENT_TOLERANCE));
        list.push(compareValues(`weight gradient ${what}`, await read(wt.grad, w.length), want.dw, GRADIENT_TOLERANCE));
        list.push(compareValues(`bias gradient ${what}`, await read(bt.grad, b.length), want.db, GRADIENT_TOLERANCE));
        for (const t of [y, xt, wt, bt]) t.dispose();
      }
      return list;
    },
  };
}

function routedConvCheck(): SelfCheck {
  return {
    name: 'routed conv2d (experts)',
    async run() {
      const rng = new Rng(104);
      const [B, E, k, Cin, Cout, H, W] = [2, 4, 2, 6, 5, 8, 12];
      const top = [2, 0, 1, 3];
      const x = rng.uniform(B * Cin * H * W);
      const w = rng.uniform(E * Cout * Cin * 9);
      const b = rng.uniform(E * Cout);
      const out = noGrad(() =>
        tidy(() => {
          const table = routingTable(Tensor.fromArray(top, [B, k], 'u32'), E);
          return routedConv2d(Tensor.fromArray(x, [B, Cin, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), Tensor.fromArray(b, [E, Cout]), table, { relu: true });
        }),
      );
      const table = top.map((e, n) => [Math.floor(n / k), e] as const);
      const want = refConv({ x, xShape: [B, Cin, H, W], w, E, Cout, K: 3, b, table, pad: 1, relu: true });
      const what = `top-${k} of ${E} experts, ${B}×${Cin}→${Cout} ${H}×${W}`;
      const list = [compareValues(what, await out.data(), want.data, FORWARD_TOLERANCE)];
      out.dispose();
      // Gradients (without the ReLU): each expert's weights and bias from the samples that chose it.
      const g = rng.uniform(B * k * Cout * H * W);
      const [xt, wt, bt] = [leaf(x, [B, Cin, H, W]), leaf(w, [E, Cout, Cin, 3, 3]), leaf(b, [E, Cout])];
      const topT = Tensor.fromArray(top, [B, k], 'u32');
      const tableT = routingTable(topT, E);
      const y = routedConv2d(xt, wt, bt, tableT);
      backward(y, Tensor.fromArray(g, y.shape));
      const grads = refConvGrads(x, [B, Cin, H, W], w, E, Cout, 3, table, g);
      list.push(compareValues(`input gradient, ${what}`, await read(xt.grad, x.length), grads.dx, GRADIENT_TOLERANCE));
      list.push(compareValues(`weight gradient, ${what}`, await read(wt.grad, w.length), grads.dw, GRADIENT_TOLERANCE));
      list.push(compareValues(`bias gradient, ${what}`, await read(bt.grad, b.length), grads.db, GRADIENT_TOLERANCE));
      for (const t of [y, xt, wt, bt, topT, tableT]) t.dispose();
      return list;
    },
  };
}

function gateCheck(): SelfCheck {
  return {
    name: 'noisy top-k gate',
    async run() {
      const list: Comparison[] = [];
      for (const train of [false, true]) {
        const [B, D, E, k, coef] = [3, 3001, 4, 2, 0.02];
        // Inputs whose logits are well apart, so that float32 rounding cannot change the choice of experts.
        let seed = 105;
        let inputs: { x: Float32Array; wg: Float32Array; wn: Float32Array; noise: Float32Array | null; want: GateRef };
        for (;;) {
          const rng = new Rng(seed++);
          const x = rng.uniform(B * D);
          const wg = rng.uniform(D * E, -0.05, 0.05);
          const wn = rng.uniform(D * E, -0.05, 0.05);
          const noise = train ? rng.normal(B * E) : null;
          const want = gateRef(x, wg, wn, noise, B, D, E, k, coef);
          inputs = { x, wg, wn, noise, want };
          if (want.gap > 0.05) break;
        }
        const { x, wg, wn, noise, want } = inputs;
        const r = noGrad(() =>
          tidy(() => noisyTopKGate(Tensor.fromArray(x, [B, D]), Tensor.fromArray(wg, [D, E]), Tensor.fromArray(wn, [D, E]), { k, train, lossCoef: coef, noise: noise ? Tensor.fromArray(noise, [B, E]) : undefined })),
        );
        const mode = train ? 'training (noise)' : 'inference';
        list.push(compareExact(`experts, ${mode}`, await r.topIndices.u32(), want.top));
        list.push(compareValues(`gates, ${mode}`, await r.gates.data(), want.gates, GRADIENT_TOLERANCE));
        list.push(compareValues(`load, ${mode}`, await r.load.data(), want.load, GRADIENT_TOLERANCE));
        list.push(compareValues(`importance, ${mode}`, await r.importance.data(), want.importance, GRADIENT_TOLERANCE));
        list.push(compareValues(`aux loss, ${mode}`, await r.auxLoss.data(), [want.aux], GRADIENT_TOLERANCE));
        for (const t of Object.values(r)) t.dispose();
      }
      return list;
    },
  };
}

function combineCheck(): SelfCheck {
  return {
    name: 'expert combine',
    async run() {
      const rng = new Rng(106);
      const [B, E, k, C, H, W] = [3, 4, 2, 3, 7, 10];
      const P = C * H * W;
      const top = [2, 0, 1, 3, 3, 1];
      const gates = new Float32Array(B * E);
      for (let i = 0; i < top.length; i++) gates[Math.floor(i / k) * E + top[i]] = 0.1 + rng.next();
      const y = rng.uniform(B * k * P, -6, 6);
      const up = rng.uniform(B * P);
      const [yt, gt] = [leaf(y, [B * k, C, H, W]), leaf(gates, [B, E])];
      const idx = Tensor.fromArray(top, [B, k], 'u32');
      const out = combineExperts(yt, gt, idx);
      const got = await out.data();
      backward(out, Tensor.fromArray(up, out.shape));
      const want = combineRef(y, gates, top, B, E, k, P);
      const { dy, dg } = combineGradRef(want, up, top, B, E, k, P);
      const list = [
        compareValues('log-sum-exp combine', got, want.out, FORWARD_TOLERANCE),
        compareValues('gradient of the expert outputs', await read(yt.grad, y.length), dy, GRADIENT_TOLERANCE),
        compareValues('gradient of the gates', await read(gt.grad, gates.length), dg, GRADIENT_TOLERANCE),
      ];
      for (const t of [out, yt, gt, idx]) t.dispose();
      return list;
    },
  };
}

function attentionCheck(): SelfCheck {
  return {
    name: 'attention',
    async run() {
      const rng = new Rng(107);
      const list: Comparison[] = [];
      for (const c of [
        { B: 1, H: 2, Lq: 37, Lk: 45, D: 16, Dv: 16 },
        { B: 2, H: 1, Lq: 64, Lk: 64, D: 32, Dv: 32 },
        { B: 1, H: 1, Lq: 9, Lk: 20, D: 7, Dv: 5 },
      ]) {
        const q = rng.normal(c.B * c.H * c.Lq * c.D);
        const kk = rng.normal(c.B * c.H * c.Lk * c.D);
        const v = rng.normal(c.B * c.H * c.Lk * c.Dv);
        const g = rng.normal(c.B * c.H * c.Lq * c.Dv);
        const [qt, kt, vt] = [leaf(q, [c.B, c.H, c.Lq, c.D]), leaf(kk, [c.B, c.H, c.Lk, c.D]), leaf(v, [c.B, c.H, c.Lk, c.Dv])];
        const out = attention(qt, kt, vt);
        const got = await out.data();
        backward(out, Tensor.fromArray(g, out.shape));
        const want = attentionRef(c, q, kk, v, g);
        const what = `${c.B}×${c.H} heads, ${c.Lq}×${c.Lk}, d ${c.D}`;
        list.push(compareValues(`forward ${what}`, got, want.out, FORWARD_TOLERANCE));
        list.push(compareValues(`dq ${what}`, await read(qt.grad, q.length), want.dq, GRADIENT_TOLERANCE));
        list.push(compareValues(`dk ${what}`, await read(kt.grad, kk.length), want.dk, GRADIENT_TOLERANCE));
        list.push(compareValues(`dv ${what}`, await read(vt.grad, v.length), want.dv, GRADIENT_TOLERANCE));
        for (const t of [out, qt, kt, vt]) t.dispose();
      }
      return list;
    },
  };
}

function resizeCheck(): SelfCheck {
  return {
    name: 'bilinear resize',
    async run() {
      const rng = new Rng(108);
      const list: Comparison[] = [];
      for (const [shape, oh, ow] of [
        [[2, 3, 13, 17], 6, 8],
        [[1, 2, 5, 7], 12, 15],
        [[1, 1, 24, 32], 1, 5],
      ] as Array<[number[], number, number]>) {
        const [n, c, h, w] = shape;
        const x = rng.uniform(size(shape));
        const g = rng.uniform(n * c * oh * ow);
        const xt = leaf(x, shape);
        const out = resizeBilinear(xt, oh, ow);
        const got = await out.data();
        backward(out, Tensor.fromArray(g, out.shape));
        const dx = new Float64Array(x.length);
        for (let p = 0; p < n * c; p++) dx.set(refResizeGradPlane(g, p * oh * ow, h, w, oh, ow), p * h * w);
        list.push(compareValues(`[${shape}] → ${oh}×${ow}`, got, refResize(x, shape, oh, ow), FORWARD_TOLERANCE));
        list.push(compareValues(`gradient [${shape}] → ${oh}×${ow}`, await read(xt.grad, x.length), dx, GRADIENT_TOLERANCE));
        for (const t of [out, xt]) t.dispose();
      }
      return list;
    },
  };
}

function softmaxSumCheck(): SelfCheck {
  return {
    name: 'softmax and sum',
    async run() {
      const rng = new Rng(109);
      const [rows, cols] = [7, 129];
      const x = rng.uniform(rows * cols, -4, 4);
      const sm = noGrad(() => tidy(() => softmax(Tensor.fromArray(x, [rows, cols]))));
      const shape = [3, 5, 6, 7];
      const y = rng.uniform(size(shape));
      const s = noGrad(() => tidy(() => sum(Tensor.fromArray(y, shape), [0, 2])));
      const want = sumAxes(y, shape, [0, 2]);
      const list = [compareValues(`softmax ${rows}×${cols}`, await sm.data(), refSoftmax(x, rows, cols), FORWARD_TOLERANCE), compareValues(`sum over axes 0, 2 of [${shape}]`, await s.data(), want, FORWARD_TOLERANCE)];
      sm.dispose();
      s.dispose();
      return list;
    },
  };
}

function adamCheck(): SelfCheck {
  return {
    name: 'Adam step',
    async run() {
      const rng = new Rng(110);
      const n = 1031;
      const [lr, b1, b2, eps, wd] = [0.05, 0.9, 0.999, 1e-8, 0.01];
      const p0 = rng.uniform(n);
      const grads = [rng.uniform(n), rng.uniform(n), rng.uniform(n)];
      const p = Tensor.fromArray(p0, [n]);
      p.requiresGrad = true;
      const opt = new Adam([p], { lr, betas: [b1, b2], eps, weightDecay: wd });
      for (const g of grads) {
        p.grad = Tensor.fromArray(g, [n]);
        opt.step();
        opt.zeroGrad();
      }
      // torch.optim.Adam in float64 from the same float32 start.
      const reference = new ReferenceAdam(Float64Array.from(p0), { lr, betas: [b1, b2], eps, weightDecay: wd, decoupled: false });
      for (const g of grads) reference.update(g, lr);
      const want = reference.x;
      const got = await p.data();
      // The update itself (p − p0), so that a wrong step is not hidden behind the size of p.
      const list = [compareValues('parameter change after 3 steps', got.map((x, i) => x - p0[i]), want.map((x, i) => x - p0[i]), GRADIENT_TOLERANCE)];
      opt.dispose();
      p.dispose();
      return list;
    },
  };
}

/**
 * Relative errors allowed for the Winograd convolution, F(4×4) and F(6×6): its transforms' constants (up to 21/4 and
 * 1/90 for F(6×6)) round in float32 too; measured worst 6e-6 and 1e-5 with up to 160 input channels.
 */
export const WINOGRAD_TOLERANCE: Record<number, number> = { 4: 2e-5, 6: 6e-5 };

/**
 * The Winograd convolution, forced wherever it may run (conv2d-choice.ts picks it only where a measured table says it
 * is faster): forward with bias and ReLU, routed, and the input, weight and bias gradients, F(4×4) and F(6×6).
 */
function winogradCheck(): SelfCheck {
  return {
    name: 'winograd convolution',
    async run() {
      const rng = new Rng(105);
      const list: Comparison[] = [];
      const [Nin, Cin, Cout, E, H, W] = [2, 7, 19, 3, 13, 10];
      const table = [[1, 2], [0, 0], [1, 0]] as const;
      const x = rng.uniform(Nin * Cin * H * W);
      const w = rng.uniform(E * Cout * Cin * 9);
      const b = rng.uniform(E * Cout);
      const g = rng.uniform(table.length * Cout * H * W);
      const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K: 3, b, table, pad: 1, relu: true });
      const grads = refConvGrads(x, [Nin, Cin, H, W], w, E, Cout, 3, table, g);
      try {
        for (const m of [4, 6] as const) {
          setConvAlgorithm(m === 4 ? 'winograd4' : 'winograd6');
          const tol = WINOGRAD_TOLERANCE[m];
          const tbl = () => Tensor.fromArray(table.flat(), [table.length, 2], 'u32');
          const out = noGrad(() => tidy(() => routedConv2d(Tensor.fromArray(x, [Nin, Cin, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), Tensor.fromArray(b, [E, Cout]), tbl(), { relu: true })));
          list.push(compareValues(`F(${m}×${m}) routed forward with bias and ReLU`, await out.data(), want.data, tol));
          out.dispose();
          const [xt, wt, bt] = [leaf(x, [Nin, Cin, H, W]), leaf(w, [E, Cout, Cin, 3, 3]), leaf(b, [E, Cout])];
          const tableT = tbl();
          const y = routedConv2d(xt, wt, bt, tableT);
          backward(y, Tensor.fromArray(g, y.shape));
          list.push(compareValues(`F(${m}×${m}) input gradient`, await read(xt.grad, x.length), grads.dx, tol));
          list.push(compareValues(`F(${m}×${m}) weight gradient`, await read(wt.grad, w.length), grads.dw, tol));
          list.push(compareValues(`F(${m}×${m}) bias gradient`, await read(bt.grad, b.length), grads.db, tol));
          for (const t of [y, xt, wt, bt, tableT]) t.dispose();
        }
      } finally {
        setConvAlgorithm('auto');
      }
      return list;
    },
  };
}

/** Every kernel check, in the order selftest runs them. */
export function kernelChecks(): SelfCheck[] {
  return [matmulCheck(), convForwardCheck(), convGradientCheck(), routedConvCheck(), winogradCheck(), gateCheck(), combineCheck(), attentionCheck(), resizeCheck(), softmaxSumCheck(), adamCheck()];
}
