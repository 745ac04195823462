/** Float64 references shared with `moefusion selftest`: they live in src/check/reference.ts. */
export { cv2, erfc64, gateRef, phi64, type GateRef } from '../../src/check/reference.ts';
