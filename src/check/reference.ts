/**
 * Float64 CPU references of the engine's kernels, for `moefusion selftest` (src/check/kernels.ts) and the tests:
 * the GPU computes in float32, these in float64 from the same float32 inputs, so their difference is the kernel's
 * rounding error (or its bug).
 */
import { broadcastStrides } from '../kernels/elementwise.ts';

// ---- matrix products ------------------------------------------------------------

/** C = A·B for row-major A (M×K) and B (K×N). */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const av = a[i * K + k];
      for (let j = 0; j < N; j++) c[i * N + j] += av * b[k * N + j];
    }
  return c;
}

export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

// ---- convolution ------------------------------------------------------------

/** The (routed) 2-D convolution, stride 1, zero padding: its operands. */
export interface RefConvArgs {
  x: ArrayLike<number>;
  xShape: readonly number[]; // (Nin, Cin, H, W)
  w: ArrayLike<number>; // (E, Cout, Cin, K, K)
  E: number;
  Cout: number;
  K: number;
  b: ArrayLike<number> | null; // (E, Cout)
  /** [inputIndex, expertIndex] per output sample; identity with E = 1 when omitted. */
  table?: ReadonlyArray<readonly [number, number]>;
  pad: number;
  relu: boolean;
}

/** Float64 CPU reference of the (routed) 2-D convolution, stride 1, zero padding. */
export function refConv(a: RefConvArgs): { data: Float64Array; shape: number[] } {
  const [N, Cin, H, W] = a.xShape;
  const { K, Cout, pad } = a;
  const Ho = H + 2 * pad - K + 1;
  const Wo = W + 2 * pad - K + 1;
  const table = a.table ?? Array.from({ length: N }, (_, n) => [n, 0] as const);
  const out = new Float64Array(table.length * Cout * Ho * Wo);
  table.forEach(([src, e], v) => {
    for (let co = 0; co < Cout; co++) {
      const ob = (v * Cout + co) * Ho * Wo;
      const bias = a.b ? a.b[e * Cout + co] : 0;
      for (let i = 0; i < Ho * Wo; i++) out[ob + i] = bias;
      for (let ci = 0; ci < Cin; ci++) {
        const xb = (src * Cin + ci) * H * W;
        for (let ky = 0; ky < K; ky++)
          for (let kx = 0; kx < K; kx++) {
            const wv = a.w[(((e * Cout + co) * Cin + ci) * K + ky) * K + kx];
            for (let y = 0; y < Ho; y++) {
              const iy = y + ky - pad;
              if (iy < 0 || iy >= H) continue;
              for (let x = 0; x < Wo; x++) {
                const ix = x + kx - pad;
                if (ix >= 0 && ix < W) out[ob + y * Wo + x] += wv * a.x[xb + iy * W + ix];
              }
            }
          }
      }
      if (a.relu) for (let i = 0; i < Ho * Wo; i++) out[ob + i] = Math.max(0, out[ob + i]);
    }
  });
  return { data: out, shape: [table.length, Cout, Ho, Wo] };
}

/** Float64 gradients of Σ R·routedConv(x, w, b) (stride 1, zero padding (K−1)/2, no relu). */
export function refConvGrads(x: ArrayLike<number>, xShape: readonly number[], w: ArrayLike<number>, E: number, Cout: number, K: number, table: ReadonlyArray<readonly [number, number]>, r: ArrayLike<number>) {
  const [, Cin, H, W] = xShape;
  const pad = (K - 1) / 2;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  const db = new Float64Array(E * Cout);
  table.forEach(([n, e], o) => {
    for (let co = 0; co < Cout; co++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const g = r[((o * Cout + co) * H + y) * W + xx];
          db[e * Cout + co] += g;
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < K; ky++)
              for (let kx = 0; kx < K; kx++) {
                const [iy, ix] = [y + ky - pad, xx + kx - pad];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const xi = ((n * Cin + ci) * H + iy) * W + ix;
                const wi = (((e * Cout + co) * Cin + ci) * K + ky) * K + kx;
                dw[wi] += g * x[xi];
                dx[xi] += g * w[wi];
              }
        }
  });
  return { dx, dw, db };
}

/** Row-wise softmax over the last axis of `rows` rows. */
export function refSoftmax(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += out[r * cols + c] = Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] /= s;
  }
  return out;
}

// ---- bilinear resize ------------------------------------------------------------

/**
 * Taps of PyTorch's align_corners=True bilinear mapping along one axis: src = o·(in−1)/(out−1), 0 when out = 1.
 * PyTorch computes scale and src in float32 for float32 tensors (so src may land just below an integer and leak
 * a weight of ~1e-5 to the previous pixel); the reference does the same.
 */
export function refTaps(inSize: number, outSize: number): Array<[number, number, number]> {
  const scale = outSize > 1 ? Math.fround((inSize - 1) / (outSize - 1)) : 0;
  return Array.from({ length: outSize }, (_, o) => {
    const src = Math.fround(o * scale);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    return [i0, i1, src - i0];
  });
}

export function refResize(x: ArrayLike<number>, [n, c, h, w]: number[], oh: number, ow: number): Float64Array {
  const ty = refTaps(h, oh);
  const tx = refTaps(w, ow);
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const [y0, y1, ly] = ty[oy];
        const [x0, x1, lx] = tx[ox];
        const at = (y: number, xx: number) => x[p * h * w + y * w + xx];
        out[(p * oh + oy) * ow + ox] = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      }
  return out;
}

/** The adjoint of refResize for one plane: scatters the output gradient g (oh × ow) onto an h × w plane. */
export function refResizeGradPlane(g: ArrayLike<number>, gOffset: number, h: number, w: number, oh: number, ow: number): Float64Array {
  const ty = refTaps(h, oh);
  const tx = refTaps(w, ow);
  const out = new Float64Array(h * w);
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++) {
      const v = g[gOffset + oy * ow + ox];
      const [y0, y1, ly] = ty[oy];
      const [x0, x1, lx] = tx[ox];
      out[y0 * w + x0] += (1 - ly) * (1 - lx) * v;
      out[y0 * w + x1] += (1 - ly) * lx * v;
      out[y1 * w + x0] += ly * (1 - lx) * v;
      out[y1 * w + x1] += ly * lx * v;
    }
  return out;
}

// ---- gating and combine ------------------------------------------------------------

/** What the reference's combine puts where the weighted sum underflows: log(float64 eps). */
export const LOG_EPS = Math.log(2.220446049250313e-16);

/** erf by its Taylor series (|x| ≤ 2.5, ~1e−14) and erfc by its continued fraction beyond. */
export function erfc64(x: number): number {
  if (Math.abs(x) <= 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x < 0) return 2 - erfc64(-x);
  let f = x;
  for (let n = 120; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}
export const phi64 = (z: number) => 0.5 * erfc64(-z / Math.SQRT2);

export function cv2(v: number[]): number {
  if (v.length === 1) return 0;
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const vr = v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1);
  return vr / (m * m + 1e-10);
}

export interface GateRef {
  gates: number[];
  top: number[];
  load: number[];
  importance: number[];
  aux: number;
  /** Smallest gap between consecutive sorted logits of a row (selection stability). */
  gap: number;
}

/** The reference's noisy_top_k_gating + cv² loss in float64 (ties: lower index first). */
export function gateRef(x: ArrayLike<number>, wg: ArrayLike<number>, wn: ArrayLike<number>, noise: ArrayLike<number> | null, B: number, D: number, E: number, k: number, coef: number): GateRef {
  const clean = matmul(x, wg, B, D, E);
  const rawN = matmul(x, wn, B, D, E);
  const train = noise !== null;
  const sigma = Array.from(rawN, (r) => (r > 20 ? r : Math.log1p(Math.exp(r))) + 0.01);
  const logits = Array.from(clean, (c, i) => (train ? c + noise![i] * sigma[i] : c));
  const gates = new Array<number>(B * E).fill(0);
  const top: number[] = [];
  const load = new Array<number>(E).fill(0);
  let gap = Infinity;
  for (let b = 0; b < B; b++) {
    const row = logits.slice(b * E, b * E + E);
    const order = [...row.keys()].sort((i, j) => row[j] - row[i] || i - j);
    for (let r = 0; r + 1 < E; r++) gap = Math.min(gap, row[order[r]] - row[order[r + 1]]);
    const chosen = order.slice(0, k);
    top.push(...chosen);
    const m = row[chosen[0]];
    const z = chosen.reduce((s, e) => s + Math.exp(row[e] - m), 0);
    for (const e of chosen) gates[b * E + e] = Math.exp(row[e] - m) / z;
    if (train && k < E) {
      const tin = row[order[k]];
      const tout = row[order[k - 1]];
      for (let e = 0; e < E; e++) {
        const thr = row[e] > tin ? tin : tout;
        load[e] += phi64((clean[b * E + e] - thr) / sigma[b * E + e]);
      }
    } else for (let e = 0; e < E; e++) load[e] += gates[b * E + e] > 0 ? 1 : 0;
  }
  const importance = [...Array(E).keys()].map((e) => gates.filter((_, i) => i % E === e).reduce((a, v) => a + v, 0));
  return { gates, top, load, importance, aux: coef * (cv2(importance) + cv2(load)), gap };
}

/**
 * The reference's combine in float64: log Σ_s g·exp(y), an exact-zero float32 sum replaced by eps. For row b
 * and element p (P elements per sample), plus d out / d y_s and d out / d g_s.
 */
export function combineRef(y: ArrayLike<number>, g: ArrayLike<number>, top: ArrayLike<number>, B: number, E: number, k: number, P: number) {
  const out = new Float64Array(B * P);
  const dy = new Float64Array(B * k * P); // d out[b,p] / d y[b·k+s, p]
  const dg = new Float64Array(B * k * P); // d out[b,p] / d g[b, top[b,s]]
  for (let b = 0; b < B; b++)
    for (let p = 0; p < P; p++) {
      let m = -Infinity;
      for (let s = 0; s < k; s++) m = Math.max(m, y[(b * k + s) * P + p]);
      let sum = 0;
      for (let s = 0; s < k; s++) sum += g[b * E + top[b * k + s]] * Math.exp(y[(b * k + s) * P + p] - m);
      const lse = m + Math.log(sum);
      const underflow = !(sum > 0) || lse < -150 * Math.LN2;
      out[b * P + p] = underflow ? LOG_EPS : lse;
      if (underflow) continue;
      for (let s = 0; s < k; s++) {
        const a = Math.exp(y[(b * k + s) * P + p] - m) / sum;
        dg[(b * k + s) * P + p] = a;
        dy[(b * k + s) * P + p] = a * g[b * E + top[b * k + s]];
      }
    }
  return { out, dy, dg };
}

// ---- attention ------------------------------------------------------------

export interface AttentionCase {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
  Dv: number;
  mask?: { data: ArrayLike<number>; shape: number[] };
  causal?: boolean;
  scale?: number;
}

export interface AttentionRef {
  out: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** Float64 attention with explicit probabilities; gradients for the output gradient g (when given). */
export function attentionRef(c: AttentionCase, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, g?: ArrayLike<number>): AttentionRef {
  const { B, H, Lq, Lk, D, Dv } = c;
  const scale = c.scale ?? 1 / Math.sqrt(D);
  const ms = c.mask ? broadcastStrides(c.mask.shape, [B, H, Lq, Lk]) : [0, 0, 0, 0];
  const out = new Float64Array(B * H * Lq * Dv);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Lq; i++) {
        const s = new Float64Array(Lk);
        for (let j = 0; j < Lk; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(bh * Lq + i) * D + d] * k[(bh * Lk + j) * D + d];
          s[j] = dot * scale + (c.mask ? c.mask.data[b * ms[0] + h * ms[1] + i * ms[2] + j * ms[3]] : 0);
          if (c.causal && j > i) s[j] = -Infinity;
        }
        const mx = Math.max(...s);
        const p = new Float64Array(Lk);
        if (mx > -Infinity) {
          let sum = 0;
          for (let j = 0; j < Lk; j++) sum += (p[j] = Math.exp(s[j] - mx));
          for (let j = 0; j < Lk; j++) p[j] /= sum;
        }
        const o = (bh * Lq + i) * Dv;
        for (let j = 0; j < Lk; j++) for (let e = 0; e < Dv; e++) out[o + e] += p[j] * v[(bh * Lk + j) * Dv + e];
        if (!g) continue;
        // dP = g·vᵀ, dS = P ∘ (dP − Σ_j P dP), then dq = dS·k·scale, dk += dSᵀ·q·scale, dv += Pᵀ·g.
        const dp = new Float64Array(Lk);
        let rowDot = 0;
        for (let j = 0; j < Lk; j++) {
          for (let e = 0; e < Dv; e++) dp[j] += g[o + e] * v[(bh * Lk + j) * Dv + e];
          rowDot += p[j] * dp[j];
        }
        for (let j = 0; j < Lk; j++) {
          const ds = p[j] * (dp[j] - rowDot) * scale;
          for (let d = 0; d < D; d++) {
            dq[(bh * Lq + i) * D + d] += ds * k[(bh * Lk + j) * D + d];
            dk[(bh * Lk + j) * D + d] += ds * q[(bh * Lq + i) * D + d];
          }
          for (let e = 0; e < Dv; e++) dv[(bh * Lk + j) * Dv + e] += p[j] * g[o + e];
        }
      }
    }
  return { out, dq, dk, dv };
}
