/**
 * Float64 references of the pointwise activations (src/kernels/activations.ts, the expressions the elementwise
 * kernels evaluate): sigmoid, softplus, GELU (tanh form), clamp and the rest.
 */

export const sigmoid64 = (v: number): number => 1 / (1 + Math.exp(-v));

/** log(1 + e^v) without overflow: max(v, 0) + log1p(e^−|v|). */
export const softplus64 = (v: number): number => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

/** PyTorch's GELU(approximate='tanh'). */
export const gelu64 = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

export const clamp64 = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
