/** Seeded random numbers for reproducible tests. */
export { Rng } from '../../src/graph/rng.ts';
