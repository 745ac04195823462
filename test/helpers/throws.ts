/** Expected errors. */
import * as assert from 'uvu/assert';

type ErrorClass<E> = new (...args: never[]) => E;

function check<E extends Error>(caught: unknown, pattern: RegExp, cls: ErrorClass<E>, what = ''): E {
  assert.instance(caught, cls, `${what}${what && ': '}expected a ${cls.name} matching ${pattern}, got ${caught}`);
  assert.match((caught as Error).message, pattern, what || undefined);
  return caught as E;
}

/** Asserts that fn throws an instance of `cls` (any Error by default) whose message matches `pattern`; returns it. */
export function assertThrowsError<E extends Error>(fn: () => unknown, pattern: RegExp, cls: ErrorClass<E> = Error as never): E {
  try {
    fn();
  } catch (e) {
    return check(e, pattern, cls);
  }
  return check(null, pattern, cls);
}

/** assertThrowsError for a function that may also reject; `what` names the case in failures. */
export async function assertRejects<E extends Error>(fn: () => unknown, pattern: RegExp, cls: ErrorClass<E> = Error as never, what = ''): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return check(e, pattern, cls, what);
  }
  return check(null, pattern, cls, what);
}
