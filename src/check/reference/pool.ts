/** Float64 references of average pooling with stride = window and no padding (src/kernels/pool.ts). */

/** F.avg_pool2d(x, k): rows and columns past the last whole window are dropped. */
export function refAvgPool(x: ArrayLike<number>, [n, c, h, w]: number[], k: number): Float64Array {
  const [oh, ow] = [Math.floor(h / k), Math.floor(w / k)];
  const out = new Float64Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let s = 0;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) s += x[(p * h + oy * k + dy) * w + ox * k + dx];
        out[(p * oh + oy) * ow + ox] = s / (k * k);
      }
  return out;
}

/** The adjoint of refAvgPool: g/k² over each window, zero on dropped rows and columns. */
export function refAvgPoolGrad(g: ArrayLike<number>, [n, c, h, w]: number[], k: number): Float64Array {
  const [oh, ow] = [Math.floor(h / k), Math.floor(w / k)];
  const out = new Float64Array(n * c * h * w);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < oh * k; y++) {
      const row = (p * oh + Math.floor(y / k)) * ow;
      for (let ox = 0; ox < ow; ox++)
        for (let dx = 0; dx < k; dx++) out[(p * h + y) * w + ox * k + dx] = g[row + ox] / (k * k);
    }
  return out;
}
