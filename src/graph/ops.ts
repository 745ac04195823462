/** Every differentiable op of the engine, in one import. */
import { registerBackwardOps } from './autograd.ts';
import { add, ones } from './ops/arithmetic.ts';

export * from './ops/arithmetic.ts';
export * from './ops/reduce.ts';
export * from './ops/matmul.ts';
export * from './ops/shape.ts';

registerBackwardOps({ add, ones });
