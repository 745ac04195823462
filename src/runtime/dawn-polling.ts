/**
 * Dawn's Node bindings wait for the GPU by polling: while any promise of theirs is pending (a read-back, a kernel
 * compiling, onSubmittedWorkDone), they call ProcessEvents from setImmediate again and again, which keeps one CPU
 * core busy for the whole wait (dawn/node/binding/AsyncRunner.cpp; crbug.com/dawn/1127). With a software driver
 * the "GPU" is the CPU, so that core is taken from the work being waited for: on this project's 2-core machine a
 * 640×480 fusion took twice as long while JavaScript waited for it. This module paces that loop: the first polls of
 * a wait stay immediate (short waits keep their latency), later ones come from a 1 ms timer.
 */

/** Immediate polls at the start of a wait, before the pace drops to the timer's. */
export const IMMEDIATE_POLLS = 100;

let installed = false;
/** Polls scheduled so far, immediate and from the timer (tests). */
export const pollCounts = { immediate: 0, timed: 0 };

/**
 * Dawn's poll callback: a native function without name or parameters (what Napi::Function::New makes). Promise
 * resolvers are native and nameless too, but take one parameter.
 */
export function isDawnPoll(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && fn.length === 0 && Function.prototype.toString.call(fn).includes('[native code]');
}

/** Replaces globalThis.setImmediate by one that paces Dawn's polls; everything else goes through unchanged. */
export function paceDawnPolling(): void {
  if (installed) return;
  installed = true;
  const immediate = globalThis.setImmediate;
  // A poll scheduled from inside a poll continues the wait; one scheduled from elsewhere starts a new wait.
  let polling = false;
  let polls = 0;
  const paced = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
    if (!isDawnPoll(fn)) return immediate(fn, ...args);
    if (!polling) polls = 0;
    const poll = () => {
      polling = true;
      try {
        fn();
      } finally {
        polling = false;
      }
    };
    if (++polls <= IMMEDIATE_POLLS) {
      pollCounts.immediate++;
      return immediate(poll);
    }
    pollCounts.timed++;
    return setTimeout(poll, 1);
  }) as typeof setImmediate;
  globalThis.setImmediate = Object.assign(paced, { __promisify__: immediate.__promisify__ });
}
