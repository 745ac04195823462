/** Float64 references shared with `moefusion selftest`: they live in src/check/reference.ts. */
export { refResize, refResizeGradPlane, refTaps } from '../../src/check/reference.ts';
