/** Starts the engine once for all test files. */
import { initEngine, type Engine } from '../../src/graph/engine.ts';
import '../../src/graph/ops.ts';

export function gpu(): Promise<Engine> {
  return initEngine();
}
