/** Float64 reference of fused scaled dot-product attention (src/kernels/attention.ts): forward and gradients. */
import { broadcastStrides } from '../../kernels/elementwise.ts';
import type { Dims } from '../../kernels/attention.ts';

export interface AttentionCase extends Dims {
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
