/**
 * Finite-difference gradient checker. The op's output is projected on a fixed random tensor R so that the
 * scalar loss Σ out·R (computed in float64 on the CPU) exercises every output element; central differences
 * of that loss are compared with the gradients autograd produces for the same projection.
 */
import * as assert from 'uvu/assert';
import { Tensor } from '../../src/tensor/tensor.ts';
import { backward } from '../../src/autograd/tape.ts';
import { noGrad, tidy } from '../../src/tensor/engine.ts';
import { mul, sum } from '../../src/ops/index.ts';
import { Rng } from '../../src/util/rng.ts';

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-2: float32 forward values need a large step). */
  h?: number;
  rtol?: number;
  atol?: number;
  /** Check at most this many elements per input (spread evenly), default 64. */
  maxChecks?: number;
  seed?: number;
  /** Check only these inputs (by index) against finite differences, default all. */
  only?: number[];
}

export interface GradcheckResult {
  ok: boolean;
  worst: { input: number; index: number; numeric: number; analytic: number } | null;
  message: string;
}

async function projectedLoss(f: (xs: Tensor[]) => Tensor, inputs: Float32Array[], shapes: number[][], r: Float32Array): Promise<number> {
  const out = noGrad(() =>
    tidy(() => {
      const xs = inputs.map((d, i) => Tensor.fromArray(d, shapes[i]));
      return f(xs);
    }),
  );
  const v = await out.data();
  out.dispose();
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * r[i];
  return s;
}

/** Checks the gradients of f with respect to each of `inputs` (given as data and shapes). */
export async function gradcheck(
  f: (xs: Tensor[]) => Tensor,
  inputs: Float32Array[],
  shapes: number[][],
  opts: GradcheckOptions = {},
): Promise<GradcheckResult> {
  const { h = 1e-2, rtol = 2e-2, atol = 2e-3, maxChecks = 64, seed = 7, only } = opts;
  // Analytic gradients.
  const xs = inputs.map((d, i) => {
    const t = Tensor.fromArray(d, shapes[i]);
    t.requiresGrad = true;
    return t;
  });
  const outShape = noGrad(() => {
    const o = f(xs.map((x) => x));
    const s = [...o.shape];
    o.dispose();
    return s;
  });
  const rData = new Rng(seed).uniform(outShape.reduce((n, d) => n * d, 1));
  const r = Tensor.fromArray(rData, outShape);
  const loss = tidy(() => sum(mul(f(xs), r)));
  backward(loss);
  loss.dispose();
  r.dispose();
  const analytic = await Promise.all(xs.map(async (x) => (x.grad ? await x.grad.data() : new Float32Array(x.size))));
  for (const x of xs) x.dispose();

  let worst: GradcheckResult['worst'] = null;
  let worstRatio = 0;
  for (let k = 0; k < inputs.length; k++) {
    if (only && !only.includes(k)) continue;
    const n = inputs[k].length;
    const step = Math.max(1, Math.floor(n / maxChecks));
    let scale = 0;
    for (const v of analytic[k]) scale = Math.max(scale, Math.abs(v));
    for (let idx = 0; idx < n; idx += step) {
      const plus = inputs.map((d) => d.slice());
      const minus = inputs.map((d) => d.slice());
      plus[k][idx] += h;
      minus[k][idx] -= h;
      const numeric = ((await projectedLoss(f, plus, shapes, rData)) - (await projectedLoss(f, minus, shapes, rData))) / (2 * h);
      const a = analytic[k][idx];
      const ratio = Math.abs(numeric - a) / (atol + rtol * Math.max(Math.abs(a), scale * 0.1));
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = { input: k, index: idx, numeric, analytic: a };
      }
    }
  }
  const ok = worstRatio <= 1;
  const message = worst
    ? `gradcheck ${ok ? 'passed' : 'FAILED'}: worst at input ${worst.input}[${worst.index}]: numeric ${worst.numeric.toExponential(4)}, analytic ${worst.analytic.toExponential(4)} (${worstRatio.toFixed(2)}× tolerance)`
    : 'gradcheck passed';
  return { ok, worst, message };
}

/** Runs gradcheck on each named function of inputs of the given shapes, drawn by `draw`; fails naming the first that fails. */
export async function assertGradchecks(checks: Array<[string, (xs: Tensor[]) => Tensor, number[][]]>, draw: (n: number) => Float32Array): Promise<void> {
  for (const [name, f, shapes] of checks) {
    const r = await gradcheck(f, shapes.map((s) => draw(s.reduce((a, d) => a * d, 1))), shapes);
    assert.ok(r.ok, `${name}: ${r.message}`);
  }
}
