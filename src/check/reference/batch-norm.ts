/** Float64 references of batch normalisation (src/kernels/batch-norm.ts): statistics, output, running update, backward. */

export interface RefStats {
  mean: Float64Array;
  /** Biased variance. */
  var: Float64Array;
  count: number;
}

/** Per-channel mean and biased variance over (N, H, W), two-pass in float64. */
export function refChannelStats(x: ArrayLike<number>, [n, c, h, w]: number[]): RefStats {
  const hw = h * w;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  const count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let j = 0; j < hw; j++) s += x[(b * c + ch) * hw + j];
    const m = s / count;
    let q = 0;
    for (let b = 0; b < n; b++) for (let j = 0; j < hw; j++) q += (x[(b * c + ch) * hw + j] - m) ** 2;
    mean[ch] = m;
    variance[ch] = q / count;
  }
  return { mean, var: variance, count };
}

/** y = γ·(x − mean)/√(var + eps) + β with the given per-channel statistics. */
export function refNormalize(x: ArrayLike<number>, [n, c, h, w]: number[], mean: ArrayLike<number>, variance: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): Float64Array {
  const hw = h * w;
  const out = new Float64Array(n * c * hw);
  for (let p = 0; p < n * c; p++) {
    const ch = p % c;
    const a = gamma[ch] / Math.sqrt(variance[ch] + eps);
    for (let i = p * hw; i < (p + 1) * hw; i++) out[i] = a * (x[i] - mean[ch]) + beta[ch];
  }
  return out;
}

/**
 * PyTorch's running update (1 − momentum)·run + momentum·batch; pass the unbiased batch variance for the running
 * variance (the biased one for a single value per channel).
 */
export function refRunningUpdate(run: ArrayLike<number>, batch: Float64Array, momentum: number): Float64Array {
  return Float64Array.from(batch, (b, ch) => (1 - momentum) * run[ch] + momentum * b);
}

/** The BN backward in float64: training through the batch statistics, eval with fixed statistics. */
export function refBatchNormGrad(g: ArrayLike<number>, x: ArrayLike<number>, shape: number[], mean: ArrayLike<number>, variance: ArrayLike<number>, gamma: ArrayLike<number>, eps: number, training: boolean) {
  const [n, c, h, w] = shape;
  const hw = h * w;
  const M = n * hw;
  const invstd = Float64Array.from({ length: c }, (_, ch) => 1 / Math.sqrt(variance[ch] + eps));
  const dGamma = new Float64Array(c);
  const dBeta = new Float64Array(c);
  for (let p = 0; p < n * c; p++) {
    const ch = p % c;
    for (let i = p * hw; i < (p + 1) * hw; i++) {
      dBeta[ch] += g[i];
      dGamma[ch] += g[i] * (x[i] - mean[ch]) * invstd[ch];
    }
  }
  const dx = new Float64Array(x.length);
  for (let p = 0; p < n * c; p++) {
    const ch = p % c;
    const a = gamma[ch] * invstd[ch];
    for (let i = p * hw; i < (p + 1) * hw; i++) {
      const xhat = (x[i] - mean[ch]) * invstd[ch];
      dx[i] = training ? a * (g[i] - dBeta[ch] / M - (xhat * dGamma[ch]) / M) : a * g[i];
    }
  }
  return { dx, dGamma, dBeta };
}
