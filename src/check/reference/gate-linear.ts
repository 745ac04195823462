/** Float64 references of the gate's split-K linear map (src/kernels/gate-linear.ts) and of its two backward products. */
import { matmul, transpose } from './matmul.ts';

/** x (B,D) · w (D,E) → (B,E). */
export function refGateLinear(x: ArrayLike<number>, w: ArrayLike<number>, B: number, D: number, E: number): Float64Array {
  return matmul(x, w, B, D, E);
}

/** For the output gradient g (B,E): dx = g·wᵀ (B,D) and dw = xᵀ·g (D,E). */
export function refGateLinearGrads(x: ArrayLike<number>, w: ArrayLike<number>, g: ArrayLike<number>, B: number, D: number, E: number): { dx: Float64Array; dw: Float64Array } {
  return { dx: matmul(g, transpose(w, D, E), B, E, D), dw: matmul(transpose(x, B, D), g, D, B, E) };
}
