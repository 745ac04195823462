/**
 * Pointwise activations and their derivatives as WGSL expressions for unaryMapKernel/binaryMapKernel (one pass each).
 * Each helper takes the WGSL expression of its argument and returns an f32 expression.
 */

/** 1/(1+e^−v) without overflow: e^v/(1+e^v) for negative v. */
export function sigmoidExpr(v: string): string {
  return `select(exp(${v}) / (1.0 + exp(${v})), 1.0 / (1.0 + exp(-(${v}))), (${v}) >= 0.0)`;
}

/**
 * log(1+u) for u ≥ 0 (WGSL has no log1p): a short series below 0.01, where log(1.0 + u) would lose the
 * low digits of u to rounding, log(1+u) above.
 */
export function log1pExpr(u: string): string {
  return `select(log(1.0 + ${u}), ${u} * (1.0 - ${u} * (0.5 - ${u} * (0.33333333 - 0.25 * ${u}))), ${u} < 0.01)`;
}

/** softplus(v) = max(v,0) + log1p(e^−|v|): never overflows. */
export function softplusExpr(v: string): string {
  return `max(${v}, 0.0) + ${log1pExpr(`exp(-abs(${v}))`)}`;
}

/** √(2/π) and the cubic coefficient of GELU's tanh form (PyTorch's approximate='tanh'). */
const GELU_C = '0.7978845608028654';
const GELU_A = '0.044715';

/** GELU, tanh form: ½·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))). */
export function geluExpr(v: string): string {
  return `0.5 * ${v} * (1.0 + tanh(${GELU_C} * (${v} + ${GELU_A} * ${v} * ${v} * ${v})))`;
}

/** Its derivative: ½(1 + t) + ½·v·(1 − t²)·√(2/π)·(1 + 3·0.044715·v²), t the tanh above. */
export function geluGradExpr(v: string): string {
  const t = `tanh(${GELU_C} * (${v} + ${GELU_A} * ${v} * ${v} * ${v}))`;
  return `(0.5 * (1.0 + ${t}) + 0.5 * ${v} * (1.0 - ${t} * ${t}) * ${GELU_C} * (1.0 + 3.0 * ${GELU_A} * ${v} * ${v}))`;
}

/**
 * The share of the gradient of maximum(a, b) that goes to `a` (PyTorch's rule: all of it where a > b, none
 * where a < b, half at ties). For minimum swap the comparison.
 */
export function maxShareExpr(a: string, b: string): string {
  return `select(select(0.0, 1.0, ${a} > ${b}), 0.5, ${a} == ${b})`;
}

export function minShareExpr(a: string, b: string): string {
  return `select(select(0.0, 1.0, ${a} < ${b}), 0.5, ${a} == ${b})`;
}
