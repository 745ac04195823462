/** Float64 CPU reference of the (routed) 2-D convolution: shared with `moefusion selftest` (src/check/reference.ts). */
export { refConv, type RefConvArgs } from '../../src/check/reference.ts';
