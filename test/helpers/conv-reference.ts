/** Float64 references shared with `moefusion selftest`: they live in src/check/reference.ts. */
export { refConv, refConvGrads, type RefConvArgs } from '../../src/check/reference.ts';
