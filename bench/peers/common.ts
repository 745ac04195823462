/** What every benchmark peer provides: the same convolution (NCHW semantics, 'same' padding, bias, ReLU) and matmul. */
export interface ConvCase {
  name: string;
  n: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: number;
}

/**
 * One prepared benchmark case: each call of `once` runs it once and returns its wall milliseconds; `output` runs it
 * and reads the result back (any layout), to check that every peer computed the same thing.
 */
export interface Timed {
  once(): Promise<number>;
  output(): Promise<ArrayLike<number>>;
  dispose(): Promise<void>;
}

export interface Peer {
  name: string;
  /** The convolution (+bias+ReLU), inputs uploaded and ready. */
  conv(c: ConvCase): Promise<Timed>;
  /** An m×k · k×n matmul, inputs uploaded and ready. */
  matmul(m: number, k: number, n: number): Promise<Timed>;
  dispose(): Promise<void>;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The convolution's operands, the same for every peer: x NCHW, w (Cout, Cin, K, K), bias. */
export function convData(c: ConvCase): { x: Float32Array; w: Float32Array; b: Float32Array } {
  return { x: randomData(c.n * c.cin * c.h * c.w, 1), w: randomData(c.cout * c.cin * c.k * c.k, 2), b: randomData(c.cout, 3) };
}

/** Sum and sum of magnitudes in float64: equal for the same values in any layout. */
export function checksum(values: ArrayLike<number>): { sum: number; abs: number } {
  let sum = 0;
  let abs = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    abs += Math.abs(values[i]);
  }
  return { sum, abs };
}

export function convFlops(c: ConvCase): number {
  return 2 * c.n * c.cin * c.cout * c.k * c.k * c.h * c.w;
}

/** Deterministic pseudo-random values in [-1, 1). */
export function randomData(n: number, seed = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2147483648 - 1;
  }
  return a;
}
