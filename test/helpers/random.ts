/** Seeded random numbers for reproducible tests. */
export { Rng } from '../../src/util/rng.ts';
