/** Every differentiable op of the engine, in one import. */
export * from './arithmetic.ts';
export * from './reduce.ts';
export * from './matmul.ts';
export * from './shape.ts';
export * from './attention.ts';
export * from './conv.ts';
export * from './gating.ts';
export * from './combine.ts';
export * from './activations.ts';
export * from './concat.ts';
export * from './resize.ts';
export * from './statistics.ts';
export * from './softmax.ts';
export * from './sobel.ts';
export * from './losses.ts';
export * from './pool.ts';
export * from './batch-norm.ts';
