import { randomData, type Timed } from '../../src/bench/kernels.ts';

/** Shared with the engine-only benchmark (src/bench/kernels.ts). */
export { median, randomData, type Timed } from '../../src/bench/kernels.ts';

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

export interface Peer {
  name: string;
  /** The convolution (+bias+ReLU), inputs uploaded and ready. */
  conv(c: ConvCase): Promise<Timed>;
  /** An m×k · k×n matmul, inputs uploaded and ready. */
  matmul(m: number, k: number, n: number): Promise<Timed>;
  dispose(): Promise<void>;
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
