/** Starts the engine once for all test files. */
import { initEngine, type Engine } from '../../src/tensor/engine.ts';

export function gpu(): Promise<Engine> {
  return initEngine();
}
