/**
 * A fast subset of the kernel tests, bundled for a browser (test/browser.test.ts runs it in Chromium): convolution
 * (forward, routed, input/weight/bias gradients, slabs; Winograd forced), matmul, the gate (linear map, noisy top-k), the expert
 * combine, attention and bilinear resize, each against the float64 references of test/helpers, with the subgroup
 * kernels and the portable ones where the engine uses subgroups on this adapter. Shapes are those of the Node
 * tests, fewer of them. window.moefusionKernelChecks.run() returns one result per check instead of throwing.
 */
import { initEngine, engine, tidy } from '../../src/tensor/engine.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { attention, combineExperts, conv2d, gateLinear, matmul, noisyTopKGate, resizeBilinear, routedConv2d, scaledSize } from '../../src/ops/index.ts';
import { setSubgroupsAllowed, subgroupSize } from '../../src/kernels/subgroups.ts';
import { conv2dInputGradKernel, setConvRowSharing } from '../../src/kernels/conv2d.ts';
import { setConvAlgorithm } from '../../src/kernels/conv2d-choice.ts';
import { WINOGRAD_BOUND } from '../helpers/winograd.ts';
import { adapterName } from '../../src/runtime/device.ts';
import { assertClose, maxRelError } from '../helpers/compare.ts';
import { convGradients, WIDE_CHANNEL_CASES } from '../helpers/conv.ts';
import { Rng } from '../../src/util/rng.ts';
import * as ref from '../helpers/reference.ts';
import { refConv, refConvInputGrad } from '../../src/check/reference/conv2d.ts';
import { refConvGrads } from '../../src/check/reference/conv2d-grad.ts';
import { gateRef } from '../../src/check/reference/gating.ts';
import { combineGradRef, combineRef } from '../../src/check/reference/combine.ts';
import { attentionRef, type AttentionCase } from '../../src/check/reference/attention.ts';
import { refResize, refResizeGradPlane } from '../../src/check/reference/resize.ts';

export interface CheckResult {
  name: string;
  /** 'subgroups', 'subgroups+rows' (convolution rows shared between lanes) or 'portable'. */
  mode: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface KernelReport {
  adapter: string;
  /** The adapter's subgroup sizes, and the size the engine's subgroup kernels use (0: they are off here). */
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  engineSubgroupSize: number;
  features: string[];
  limits: { maxComputeInvocationsPerWorkgroup: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
  results: CheckResult[];
}

const rng = new Rng(4242);

/** Runs body once per kernel path: subgroups (conv also with shared rows) when the engine uses them, and portable. */
async function perMode(conv: boolean, body: (mode: string) => Promise<void>): Promise<void> {
  const sub = subgroupSize() > 0;
  const modes = sub ? (conv ? ['subgroups+rows', 'subgroups', 'portable'] : ['subgroups', 'portable']) : ['portable'];
  try {
    for (const mode of modes) {
      setSubgroupsAllowed(mode !== 'portable');
      setConvRowSharing(mode === 'subgroups+rows');
      await body(mode);
    }
  } finally {
    setSubgroupsAllowed(true);
    setConvRowSharing(true);
  }
}

type Check = [name: string, conv: boolean, run: (mode: string) => Promise<void>];

const checks: Check[] = [
  [
    'conv2d forward (k 1 and 3, bias, relu, padding 0/1, vec4 rows)',
    true,
    async (mode) => {
      const cases: Array<[number, number, number, number, number, number, boolean, boolean, number?]> = [
        [2, 3, 5, 7, 13, 3, true, true],
        [1, 5, 3, 7, 13, 1, false, false],
        [1, 16, 1, 5, 8, 3, false, true],
        [1, 3, 5, 7, 13, 3, true, false, 0],
        [2, 13, 17, 7, 12, 3, true, true],
        [1, 20, 8, 5, 4, 3, false, false],
      ];
      for (const [N, Cin, Cout, H, W, K, hasBias, relu, padding] of cases) {
        const x = rng.uniform(N * Cin * H * W);
        const w = rng.uniform(Cout * Cin * K * K);
        const b = hasBias ? rng.uniform(Cout) : null;
        const pad = padding ?? (K - 1) / 2;
        const out = tidy(() => conv2d(Tensor.fromArray(x, [N, Cin, H, W]), Tensor.fromArray(w, [Cout, Cin, K, K]), b && Tensor.fromArray(b, [Cout]), { padding, relu }));
        assertClose(await out.data(), refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad, relu }).data, { what: `conv ${N}×${Cin}→${Cout} ${H}×${W} k${K} p${pad} (${mode})` });
        out.dispose();
      }
    },
  ],
  [
    'conv2d and routed conv2d: input, weight and bias gradients',
    true,
    async (mode) => {
      for (const c of WIDE_CHANNEL_CASES) {
        const [name, xShape, E, Cout, K, tbl] = c;
        const { x, w, r, dx, dw, db } = await convGradients(c, rng);
        const want = refConvGrads(x, xShape, w, E, Cout, K, tbl, r);
        const what = `${name} (${mode})`;
        assertClose(dx, want.dx, { what: `${what} dx` });
        assertClose(dw, want.dw, { what: `${what} dw` });
        assertClose(db, want.db, { what: `${what} db` });
      }
    },
  ],
  [
    'conv2d split into channel slabs (64 KiB bindings): forward and gradients',
    true,
    async (mode) => {
      const e = engine();
      const [N, Cin, Cout, H, W, K] = [2, 24, 24, 24, 32, 3];
      const x = rng.uniform(N * Cin * H * W);
      const w = rng.uniform(Cout * Cin * K * K);
      const b = rng.uniform(Cout);
      const r = rng.uniform(N * Cout * H * W);
      e.rt.bindingLimitForTests = 64 * 1024;
      try {
        const xt = Tensor.fromArray(x, [N, Cin, H, W]);
        const wt = Tensor.fromArray(w, [Cout, Cin, K, K]);
        const bt = Tensor.fromArray(b, [Cout]);
        for (const p of [xt, wt, bt]) p.requiresGrad = true;
        const out = conv2d(xt, wt, bt);
        assertClose(await out.data(), refConv({ x, xShape: [N, Cin, H, W], w, E: 1, Cout, K, b, pad: 1, relu: false }).data, { what: `slab forward (${mode})` });
        const seed = Tensor.fromArray(r, out.shape);
        backward(out, seed);
        const want = refConvGrads(x, [N, Cin, H, W], w, 1, Cout, K, [[0, 0], [1, 0]], r);
        assertClose(await xt.grad!.data(), want.dx, { what: `slab dx (${mode})` });
        assertClose(await wt.grad!.data(), want.dw, { what: `slab dw (${mode})` });
        assertClose(await bt.grad!.data(), want.db, { what: `slab db (${mode})` });
        for (const v of [out, seed, xt, wt, bt]) v.dispose();
      } finally {
        e.rt.bindingLimitForTests = null;
      }
    },
  ],
  [
    'Winograd convolution F(4×4) and F(6×6), forced: forward (bias, relu, routed) and input gradient',
    true,
    async (mode) => {
      const [Nin, Cin, Cout, E, H, W] = [2, 6, 19, 3, 14, 9];
      const table: Array<[number, number]> = [[1, 2], [0, 0], [1, 0]];
      const x = rng.uniform(Nin * Cin * H * W);
      const w = rng.uniform(E * Cout * Cin * 9);
      const b = rng.uniform(E * Cout);
      const g = rng.uniform(table.length * Cout * H * W);
      const want = refConv({ x, xShape: [Nin, Cin, H, W], w, E, Cout, K: 3, b, table, pad: 1, relu: true }).data;
      const wantDx = refConvInputGrad([Nin, Cin, H, W], w, Cout, 3, table, g);
      try {
        for (const m of [4, 6] as const) {
          setConvAlgorithm(m === 4 ? 'winograd4' : 'winograd6');
          const tbl = () => Tensor.fromArray(table.flat(), [table.length, 2], 'u32');
          const out = tidy(() => routedConv2d(Tensor.fromArray(x, [Nin, Cin, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), Tensor.fromArray(b, [E, Cout]), tbl(), { relu: true }));
          const err = maxRelError(await out.data(), want);
          if (!(err <= WINOGRAD_BOUND[m])) throw new Error(`F(${m}×${m}) forward (${mode}): relative error ${err} > ${WINOGRAD_BOUND[m]}`);
          out.dispose();
          const dx = tidy(() => conv2dInputGradKernel(Tensor.fromArray(g, [table.length, Cout, H, W]), Tensor.fromArray(w, [E, Cout, Cin, 3, 3]), tbl(), 1, Nin));
          const errDx = maxRelError(await dx.data(), wantDx);
          if (!(errDx <= WINOGRAD_BOUND[m])) throw new Error(`F(${m}×${m}) input gradient (${mode}): relative error ${errDx} > ${WINOGRAD_BOUND[m]}`);
          dx.dispose();
        }
      } finally {
        setConvAlgorithm('auto');
      }
    },
  ],
  [
    'matmul: transposes, batches, tile-unfriendly sizes',
    false,
    async (mode) => {
      for (const [M, K, N] of [[5, 7, 3], [33, 17, 65], [97, 131, 31], [9, 23, 300]]) {
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = rng.uniform(M * K);
          const b = rng.uniform(K * N);
          const out = tidy(() => matmul(Tensor.fromArray(ta ? ref.transpose(a, M, K) : a, ta ? [K, M] : [M, K]), Tensor.fromArray(tb ? ref.transpose(b, K, N) : b, tb ? [N, K] : [K, N]), ta, tb));
          assertClose(await out.data(), ref.matmul(a, b, M, K, N), { what: `matmul ${M}×${K}×${N} ${ta}/${tb} (${mode})` });
          out.dispose();
        }
      }
      for (const [B, M, K, N, shared] of [[3, 9, 10, 11, false], [3, 10, 9, 12, true]] as const) {
        const a = rng.uniform(B * M * K);
        const b = rng.uniform((shared ? 1 : B) * K * N);
        const out = tidy(() => matmul(Tensor.fromArray(a, [B, M, K]), Tensor.fromArray(b, shared ? [K, N] : [B, K, N])));
        assertClose(await out.data(), ref.batchedMatmul(a, b, B, M, K, N, shared), { what: `batched matmul${shared ? ', shared B' : ''} (${mode})` });
        out.dispose();
      }
    },
  ],
  [
    'gate linear map (split-K) forward and backward',
    false,
    async (mode) => {
      for (const [B, D, E] of [[3, 1001, 5], [4, 70001, 4], [2, 3001, 13]]) {
        const x = rng.uniform(B * D);
        const w = rng.uniform(D * E);
        const out = tidy(() => gateLinear(Tensor.fromArray(x, [B, D]), Tensor.fromArray(w, [D, E])));
        assertClose(await out.data(), ref.matmul(x, w, B, D, E), { what: `gateLinear ${B}×${D}×${E} (${mode})` });
        out.dispose();
      }
      const [B, D, E] = [3, 41, 5];
      const x = rng.uniform(B * D);
      const w = rng.uniform(D * E);
      const g = rng.uniform(B * E);
      const xt = Tensor.fromArray(x, [B, D]);
      const wt = Tensor.fromArray(w, [D, E]);
      xt.requiresGrad = wt.requiresGrad = true;
      const out = gateLinear(xt, wt);
      const seed = Tensor.fromArray(g, [B, E]);
      backward(out, seed);
      assertClose(await xt.grad!.data(), ref.matmul(g, ref.transpose(w, D, E), B, E, D), { what: `gateLinear dx (${mode})` });
      assertClose(await wt.grad!.data(), ref.matmul(ref.transpose(x, B, D), g, D, B, E), { what: `gateLinear dw (${mode})` });
      for (const v of [xt, wt, out, seed]) v.dispose();
    },
  ],
  [
    'noisy top-k gate forward (inference, and training with fixed noise)',
    false,
    async (mode) => {
      for (const [B, D, E, k, train] of [[3, 1001, 5, 2, false], [3, 1001, 5, 2, true], [4, 614, 4, 3, true], [2, 7, 1, 1, false]] as const) {
        let inputs: { x: Float32Array; wg: Float32Array; wn: Float32Array; noise: Float32Array | null; want: ReturnType<typeof gateRef> };
        for (;;) {
          const x = rng.uniform(B * D);
          const wg = rng.uniform(D * E, -0.1, 0.1);
          const wn = rng.uniform(D * E, -0.1, 0.1);
          const noise = train ? rng.normal(B * E) : null;
          const want = gateRef(x, wg, wn, noise, B, D, E, k, 0.01);
          if (want.gap > 0.05) {
            inputs = { x, wg, wn, noise, want };
            break;
          }
        }
        const { x, wg, wn, noise, want } = inputs;
        const what = `${train ? 'train' : 'infer'} B=${B} E=${E} k=${k} (${mode})`;
        const r = tidy(() =>
          noisyTopKGate(Tensor.fromArray(x, [B, D]), Tensor.fromArray(wg, [D, E]), Tensor.fromArray(wn, [D, E]), {
            k,
            train,
            noise: noise ? Tensor.fromArray(noise, [B, E]) : undefined,
            lossCoef: 0.01,
          }),
        );
        const top = [...(await r.topIndices.u32())];
        if (top.join() !== want.top.join()) throw new Error(`${what}: top indices ${top}, expected ${want.top}`);
        assertClose(await r.gates.data(), want.gates, { what: `${what}: gates` });
        assertClose(await r.load.data(), want.load, { what: `${what}: load` });
        assertClose(await r.importance.data(), want.importance, { what: `${what}: importance` });
        assertClose([await r.auxLoss.item()], [want.aux], { what: `${what}: aux loss`, rtol: 1e-3, atol: 1e-8 });
        for (const v of Object.values(r)) v.dispose();
      }
    },
  ],
  [
    'expert combine (log Σ g·exp y) forward and backward',
    false,
    async (mode) => {
      for (const [B, E, k, C, H, W] of [[3, 5, 2, 3, 7, 11], [1, 1, 1, 1, 1, 1], [2, 4, 3, 2, 13, 5], [4, 4, 2, 16, 9, 17]]) {
        const P = C * H * W;
        const top: number[] = [];
        for (let b = 0; b < B; b++) {
          const pool = [...Array(E).keys()];
          for (let s = 0; s < k; s++) top.push(pool.splice(rng.int(pool.length), 1)[0]);
        }
        const g = new Float32Array(B * E);
        for (let b = 0; b < B; b++) for (let s = 0; s < k; s++) g[b * E + top[b * k + s]] = 0.05 + rng.next();
        const y = rng.uniform(B * k * P, -6, 6);
        const r = rng.uniform(B * P);
        const yt = Tensor.fromArray(y, [B * k, C, H, W]);
        const gt = Tensor.fromArray(g, [B, E]);
        yt.requiresGrad = gt.requiresGrad = true;
        const idx = Tensor.fromArray(top, [B, k], 'u32');
        const out = combineExperts(yt, gt, idx);
        const seed = Tensor.fromArray(r, out.shape);
        backward(out, seed);
        const want = combineRef(y, g, top, B, E, k, P);
        const what = `combine B=${B} E=${E} k=${k} (${mode})`;
        assertClose(await out.data(), want.out, { what, atol: 1e-5 });
        const { dy, dg } = combineGradRef(want, r, top, B, E, k, P);
        assertClose(await yt.grad!.data(), dy, { what: `${what}: dy` });
        assertClose(await gt.grad!.data(), dg, { what: `${what}: d gates` });
        for (const v of [yt, gt, idx, out, seed]) v.dispose();
      }
    },
  ],
  [
    'attention forward and backward (odd shapes, subgroup block layouts, masks, causal)',
    false,
    async (mode) => {
      const cases: AttentionCase[] = [
        { B: 2, H: 3, Lq: 17, Lk: 29, D: 7, Dv: 5 },
        { B: 1, H: 2, Lq: 70, Lk: 45, D: 32, Dv: 32 },
        { B: 2, H: 1, Lq: 9, Lk: 66, D: 18, Dv: 12 },
        { B: 1, H: 1, Lq: 65, Lk: 19, D: 64, Dv: 48 },
        { B: 2, H: 3, Lq: 17, Lk: 29, D: 7, Dv: 5, causal: true },
        { B: 1, H: 2, Lq: 70, Lk: 75, D: 32, Dv: 32, causal: true, mask: randomMask([1, 2, 70, 75]) },
      ];
      for (const c of cases) {
        const q = rng.normal(c.B * c.H * c.Lq * c.D);
        const k = rng.normal(c.B * c.H * c.Lk * c.D);
        const v = rng.normal(c.B * c.H * c.Lk * c.Dv);
        const g = rng.normal(c.B * c.H * c.Lq * c.Dv);
        const want = attentionRef(c, q, k, v, g);
        const qt = Tensor.fromArray(q, [c.B, c.H, c.Lq, c.D]);
        const kt = Tensor.fromArray(k, [c.B, c.H, c.Lk, c.D]);
        const vt = Tensor.fromArray(v, [c.B, c.H, c.Lk, c.Dv]);
        for (const x of [qt, kt, vt]) x.requiresGrad = true;
        const mask = c.mask ? Tensor.fromArray(c.mask.data, c.mask.shape) : undefined;
        const out = attention(qt, kt, vt, { mask, causal: c.causal });
        const what = `attention B${c.B} H${c.H} ${c.Lq}×${c.Lk} D${c.D} Dv${c.Dv}${c.causal ? ' causal' : ''}${c.mask ? ' mask' : ''} (${mode})`;
        assertClose(await out.data(), want.out, { what: `${what}: output` });
        const seed = Tensor.fromArray(g, out.shape);
        backward(out, seed);
        assertClose(await qt.grad!.data(), want.dq, { what: `${what}: dq` });
        assertClose(await kt.grad!.data(), want.dk, { what: `${what}: dk` });
        assertClose(await vt.grad!.data(), want.dv, { what: `${what}: dv` });
        for (const x of [qt, kt, vt, out, mask, seed]) x?.dispose();
      }
    },
  ],
  [
    'bilinear resize (align_corners) forward and backward, down and up',
    false,
    async (mode) => {
      const cases: Array<[number[], number, number]> = [
        [[2, 3, 13, 17], 5, 7],
        [[1, 2, 7, 5], 19, 11],
        [[1, 1, 1, 1], 3, 4],
        [[1, 2, 48, 64], ...scaledSize(48, 64, 0.25)],
        [[1, 1, 40, 56], 5, 7],
        [[1, 2, 12, 16], 48, 64],
      ];
      for (const [shape, oh, ow] of cases) {
        const x = rng.uniform(ref.size(shape));
        const gData = rng.uniform(shape[0] * shape[1] * oh * ow);
        const xt = Tensor.fromArray(x, shape);
        xt.requiresGrad = true;
        const out = resizeBilinear(xt, oh, ow);
        const what = `resize [${shape}] → ${oh}×${ow} (${mode})`;
        assertClose(await out.data(), refResize(x, shape, oh, ow), { what });
        const seed = Tensor.fromArray(gData, out.shape);
        backward(out, seed);
        const [, , h, w] = shape;
        const want = new Float64Array(xt.size);
        for (let p = 0; p < shape[0] * shape[1]; p++) want.set(refResizeGradPlane(gData, p * oh * ow, h, w, oh, ow), p * h * w);
        assertClose(await xt.grad!.data(), want, { what: `${what}: gradient` });
        for (const v of [xt, out, seed]) v.dispose();
      }
    },
  ],
];

function randomMask(shape: number[]): { data: Float32Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: new Float32Array(n).map(() => (rng.next() < 0.25 ? -Infinity : 0)), shape };
}

/** Runs the checks whose names contain `filter` (all by default). */
async function run(filter = ''): Promise<KernelReport> {
  const e = await initEngine();
  const { handle } = e.rt;
  const sizes = (handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const results: CheckResult[] = [];
  for (const [name, conv, body] of checks) {
    if (!name.includes(filter)) continue;
    await perMode(conv, async (mode) => {
      const started = performance.now();
      try {
        await body(mode);
        e.rt.check();
        results.push({ name, mode, ok: true, ms: performance.now() - started });
      } catch (err) {
        results.push({ name, mode, ok: false, ms: performance.now() - started, error: (err as Error).message || String(err) });
      }
    });
  }
  return {
    adapter: adapterName(handle.summary),
    subgroupMinSize: sizes?.subgroupMinSize ?? null,
    subgroupMaxSize: sizes?.subgroupMaxSize ?? null,
    engineSubgroupSize: subgroupSize(),
    features: [...handle.features],
    limits: {
      maxComputeInvocationsPerWorkgroup: handle.limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBufferBindingSize: handle.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: handle.limits.maxComputeWorkgroupStorageSize,
    },
    results,
  };
}

(globalThis as { moefusionKernelChecks?: { run: typeof run; names: string[] } }).moefusionKernelChecks = { run, names: checks.map((c) => c[0]) };
