/**
 * Float64 references of the (routed) convolution kernel (src/kernels/conv2d.ts): the forward and the input gradient,
 * stride 1, zero padding. The weight and bias gradients (src/kernels/conv2d-grad.ts) are in conv2d-grad.ts.
 */

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

/**
 * Float64 input gradient of Σ R·routedConv(x, w) (stride 1, zero padding (K−1)/2, no relu): every output sample
 * adds to the input sample it read (table[o] = [input, expert]).
 */
export function refConvInputGrad(xShape: readonly number[], w: ArrayLike<number>, Cout: number, K: number, table: ReadonlyArray<readonly [number, number]>, r: ArrayLike<number>): Float64Array {
  const [N, Cin, H, W] = xShape;
  const pad = (K - 1) / 2;
  const dx = new Float64Array(N * Cin * H * W);
  table.forEach(([n, e], o) => {
    for (let co = 0; co < Cout; co++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const g = r[((o * Cout + co) * H + y) * W + xx];
          for (let ci = 0; ci < Cin; ci++)
            for (let ky = 0; ky < K; ky++)
              for (let kx = 0; kx < K; kx++) {
                const [iy, ix] = [y + ky - pad, xx + kx - pad];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                dx[((n * Cin + ci) * H + iy) * W + ix] += g * w[(((e * Cout + co) * Cin + ci) * K + ky) * K + kx];
              }
        }
  });
  return dx;
}
