/** Float64 references shared with `moefusion selftest`: they live in src/check/reference.ts. */
export { combineRef, LOG_EPS } from '../../src/check/reference.ts';
