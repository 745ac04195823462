/** Float64 references shared with `moefusion selftest`: they live in src/check/reference.ts. */
export { attentionRef, type AttentionCase, type AttentionRef } from '../../src/check/reference.ts';
