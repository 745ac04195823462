/** Float64 references of bilinear resizing with align_corners=True (src/kernels/resize.ts) and of its backward. */

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
