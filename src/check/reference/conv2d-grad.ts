/**
 * Float64 references of the convolution's weight and bias gradients (src/kernels/conv2d-grad.ts), and of all three
 * gradients together (the input gradient comes from conv2d.ts).
 */
import { refConvInputGrad } from './conv2d.ts';

/**
 * Float64 weight and bias gradients of Σ R·routedConv(x, w, b) (stride 1, zero padding (K−1)/2, no relu): expert e
 * sums over the output samples routed to it (table[o] = [input, expert]); an expert no sample chose gets zeros.
 */
export function refConvWeightGrad(x: ArrayLike<number>, xShape: readonly number[], E: number, Cout: number, K: number, table: ReadonlyArray<readonly [number, number]>, r: ArrayLike<number>) {
  const [, Cin, H, W] = xShape;
  const pad = (K - 1) / 2;
  const dw = new Float64Array(E * Cout * Cin * K * K);
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
                dw[(((e * Cout + co) * Cin + ci) * K + ky) * K + kx] += g * x[((n * Cin + ci) * H + iy) * W + ix];
              }
        }
  });
  return { dw, db };
}

/** Float64 gradients of Σ R·routedConv(x, w, b) (stride 1, zero padding (K−1)/2, no relu): dx, dw and db. */
export function refConvGrads(x: ArrayLike<number>, xShape: readonly number[], w: ArrayLike<number>, E: number, Cout: number, K: number, table: ReadonlyArray<readonly [number, number]>, r: ArrayLike<number>) {
  return { dx: refConvInputGrad(xShape, w, Cout, K, table, r), ...refConvWeightGrad(x, xShape, E, Cout, K, table, r) };
}
