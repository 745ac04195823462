/** Every differentiable op of the engine, in one import. */
import { registerBackwardOps } from './autograd.ts';
import { add, ones } from './ops/arithmetic.ts';

export * from './ops/arithmetic.ts';
export * from './ops/reduce.ts';
export * from './ops/matmul.ts';
export * from './ops/shape.ts';

registerBackwardOps({ add, ones });
export * from './ops/attention.ts';
export * from './ops/conv.ts';
export * from './ops/gating.ts';
export * from './ops/combine.ts';
export * from './ops/activations.ts';
export * from './ops/concat.ts';
export * from './ops/resize.ts';
export * from './ops/statistics.ts';
export * from './ops/softmax.ts';
export * from './ops/sobel.ts';
export * from './ops/losses.ts';
export * from './ops/pool.ts';
export * from './ops/batch-norm.ts';
