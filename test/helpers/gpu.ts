/** Starts the engine once for all test files. */
import { initEngine, type Engine } from '../../src/tensor/engine.ts';
import { checkShaderKeysForTests } from '../../src/kernels/program.ts';

export function gpu(): Promise<Engine> {
  // Every program is rebuilt at each use and compared with its key's text: a key that misses a parameter of the
  // WGSL fails the test that varies it.
  checkShaderKeysForTests(true);
  return initEngine();
}
