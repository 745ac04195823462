/** Float64 CPU references of the (routed) 2-D convolution, stride 1, zero padding, and of its gradients. */

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
