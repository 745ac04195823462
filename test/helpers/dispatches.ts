/** What a computation dispatches: the kernels the fast-path tests look for. */
import { noGrad } from '../../src/tensor/engine.ts';
import type { DispatchSpec, Runtime } from '../../src/runtime/runtime.ts';

/** Runs fn without gradients, recording every dispatch (each still runs); returns fn's result and the dispatches. */
export function recordDispatches<T>(rt: Runtime, fn: () => T): { result: T; specs: DispatchSpec[] } {
  const specs: DispatchSpec[] = [];
  const original = rt.dispatch.bind(rt);
  rt.dispatch = (spec: DispatchSpec) => (specs.push(spec), original(spec));
  try {
    return { result: noGrad(fn), specs };
  } finally {
    rt.dispatch = original;
  }
}
