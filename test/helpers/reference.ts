/**
 * Float64 helpers of the tests that are not about one kernel: shapes and
 * broadcasting, sums over axes and matrix products. They live with the kernels' references in src/check/reference/.
 */
export { broadcastBinary, size, strides, type Shape } from '../../src/check/reference/elementwise.ts';
export { sumAxes } from '../../src/check/reference/reduce.ts';
export { batchedMatmul, matmul, transpose } from '../../src/check/reference/matmul.ts';
