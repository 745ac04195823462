/** Float64 reference of the experts' log-sum-exp combine (src/kernels/combine.ts) and of its gradients. */

/** What the reference's combine puts where the weighted sum underflows: log(float64 eps). */
export const LOG_EPS = Math.log(2.220446049250313e-16);

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

/**
 * The gradients of Σ out·up (up: the B·P upstream values) from combineRef's partial derivatives: for y (B·k·P) and
 * for the gates (B·E; experts outside the top k get 0).
 */
export function combineGradRef(want: { dy: Float64Array; dg: Float64Array }, up: ArrayLike<number>, top: ArrayLike<number>, B: number, E: number, k: number, P: number) {
  const dy = new Float64Array(B * k * P);
  const dg = new Float64Array(B * E);
  for (let b = 0; b < B; b++)
    for (let s = 0; s < k; s++)
      for (let p = 0; p < P; p++) {
        const i = (b * k + s) * P + p;
        dy[i] = want.dy[i] * up[b * P + p];
        dg[b * E + top[b * k + s]] += want.dg[i] * up[b * P + p];
      }
  return { dy, dg };
}
