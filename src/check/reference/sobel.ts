/** Float64 references of the Sobel gradient magnitude kernel (src/kernels/sobel.ts). */

/** Sobel_x ⋆ x and Sobel_y ⋆ x per plane (zero padding 1, cross-correlation as F.conv2d). */
export function refSobelParts(x: ArrayLike<number>, shape: readonly number[]): { gx: Float64Array; gy: Float64Array } {
  const [h, w] = shape.slice(-2);
  const kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
  const ky = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]];
  const gx = new Float64Array(x.length);
  const gy = new Float64Array(x.length);
  for (let p = 0; p < x.length / (h * w); p++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let sx = 0;
        let sy = 0;
        for (let di = -1; di <= 1; di++)
          for (let dj = -1; dj <= 1; dj++) {
            const [y, xx] = [i + di, j + dj];
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            const v = x[p * h * w + y * w + xx];
            sx += kx[di + 1][dj + 1] * v;
            sy += ky[di + 1][dj + 1] * v;
          }
        gx[p * h * w + i * w + j] = sx;
        gy[p * h * w + i * w + j] = sy;
      }
  return { gx, gy };
}

/** |Sobel_x ⋆ x| + |Sobel_y ⋆ x| per plane. */
export function refSobel(x: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const { gx, gy } = refSobelParts(x, shape);
  return gx.map((v, i) => Math.abs(v) + Math.abs(gy[i]));
}

/**
 * The backward of refSobel for the output gradient g: the adjoint correlations of wx = g·sign(Sobel_x ⋆ x) and
 * wy = g·sign(Sobel_y ⋆ x) (sign(0) = 0).
 */
export function refSobelGrad(x: ArrayLike<number>, g: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [h, w] = shape.slice(-2);
  const kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
  const ky = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]];
  const { gx, gy } = refSobelParts(x, shape);
  const dx = new Float64Array(x.length);
  for (let p = 0; p < x.length / (h * w); p++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const o = p * h * w + i * w + j;
        const [wx, wy] = [g[o] * Math.sign(gx[o]), g[o] * Math.sign(gy[o])];
        for (let di = -1; di <= 1; di++)
          for (let dj = -1; dj <= 1; dj++) {
            const [y, xx] = [i + di, j + dj];
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            dx[p * h * w + y * w + xx] += kx[di + 1][dj + 1] * wx + ky[di + 1][dj + 1] * wy;
          }
      }
  return dx;
}
