/** A single-channel image in float64, row-major: the unit every metric works on. */
export interface Plane {
  width: number;
  height: number;
  data: Float64Array;
}

export function makePlane(width: number, height: number, data = new Float64Array(width * height)): Plane {
  if (data.length !== width * height) throw new Error(`plane of ${width}×${height} needs ${width * height} values, got ${data.length}`);
  return { width, height, data };
}

export function mean(values: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

/** Element-wise a − b. */
export function subtract(a: Plane, b: Plane): Plane {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] - b.data[i];
  return makePlane(a.width, a.height, out);
}

/** Pearson correlation of all pixels (MATLAB corr2). 0/0 (a constant image) gives NaN, as there. */
export function corr2(a: Float64Array, b: Float64Array): number {
  const ma = mean(a);
  const mb = mean(b);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

export function assertSameSize(...planes: Plane[]): void {
  const [first] = planes;
  for (const p of planes)
    if (p.width !== first.width || p.height !== first.height)
      throw new Error(`image sizes differ: ${first.width}×${first.height} and ${p.width}×${p.height}`);
}

/**
 * Memoises a function of one object (a source image or plane) without keeping it alive. Evaluations of several
 * fused images against the same sources reuse the sources' filtered maps this way.
 */
export function memoizeByObject<K extends object, V>(compute: (key: K) => V): (key: K) => V {
  const cache = new WeakMap<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) cache.set(key, (value = compute(key)));
    return value;
  };
}
