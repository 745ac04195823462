/** Expected errors. */
import * as assert from 'uvu/assert';

/** Asserts that fn throws an instance of `cls` (any Error by default) whose message matches `pattern`; returns it. */
export function assertThrowsError<E extends Error>(fn: () => unknown, pattern: RegExp, cls: new (...args: never[]) => E = Error as never): E {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.instance(caught, cls, `expected a ${cls.name} matching ${pattern}, got ${caught}`);
  assert.match((caught as Error).message, pattern);
  return caught as E;
}
