/**
 * Area resampling of a rectangle of a gray plane (row-major floats): each output pixel is the mean of the source
 * area it covers, partial pixels weighted by their covered fraction. Used to shrink training crops and validation
 * frames on the CPU; a region of the output's own size is copied exactly.
 */

/** Per output index along one axis: the first source index it covers and the weight of each covered source index. */
function axisTaps(offset: number, span: number, out: number): Array<{ first: number; weights: number[] }> {
  const ratio = span / out;
  return Array.from({ length: out }, (_, i) => {
    const [a, b] = [offset + i * ratio, offset + (i + 1) * ratio];
    const first = Math.floor(a);
    const weights: number[] = [];
    for (let s = first; s < b - 1e-9; s++) weights.push((Math.min(b, s + 1) - Math.max(a, s)) / ratio);
    return { first, weights };
  });
}

export interface Region {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/**
 * The region of `src` (a plane `srcWidth` wide) resampled to outWidth × outHeight, mirrored left to right when
 * `flip`. Regions must lie inside the plane and be at least as large as the output (this only shrinks).
 */
export function resampleRegion(src: Float32Array, srcWidth: number, r: Region, outWidth: number, outHeight: number, flip = false): Float32Array {
  if (r.width < outWidth || r.height < outHeight) throw new RangeError(`resampleRegion: ${r.width}×${r.height} is smaller than ${outWidth}×${outHeight}`);
  const out = new Float32Array(outWidth * outHeight);
  const mirror = (x: number) => (flip ? outWidth - 1 - x : x);
  if (r.width === outWidth && r.height === outHeight) {
    for (let y = 0; y < outHeight; y++) {
      const row = src.subarray((r.y0 + y) * srcWidth + r.x0, (r.y0 + y) * srcWidth + r.x0 + outWidth);
      for (let x = 0; x < outWidth; x++) out[y * outWidth + mirror(x)] = row[x];
    }
    return out;
  }
  const cols = axisTaps(r.x0, r.width, outWidth);
  const rows = axisTaps(r.y0, r.height, outHeight);
  const line = new Float64Array(outWidth);
  for (let y = 0; y < outHeight; y++) {
    line.fill(0);
    const { first: sy, weights: wy } = rows[y];
    for (let k = 0; k < wy.length; k++) {
      const base = (sy + k) * srcWidth;
      for (let x = 0; x < outWidth; x++) {
        const { first: sx, weights: wx } = cols[x];
        let sum = 0;
        for (let j = 0; j < wx.length; j++) sum += wx[j] * src[base + sx + j];
        line[x] += wy[k] * sum;
      }
    }
    for (let x = 0; x < outWidth; x++) out[y * outWidth + mirror(x)] = line[x];
  }
  return out;
}
