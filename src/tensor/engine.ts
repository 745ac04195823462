/**
 * The engine's global state: the runtime, the grad mode and the stack of tidy scopes.
 * One engine per process; ops find it through `engine()`.
 */
import { Runtime } from '../runtime/runtime.ts';
import type { DeviceOptions } from '../runtime/device.ts';
import { GpuError } from '../runtime/errors.ts';

/** What the tidy scopes track: a tensor (tensor.ts), seen only through what tidy needs, so that this file does not import it. */
export interface Tracked {
  readonly isTensor: true;
  dispose(): void;
}

export class Engine {
  gradEnabled = true;
  scopes: Set<Tracked>[] = [];
  constructor(readonly rt: Runtime) {}
}

let current: Engine | null = null;
let starting: Promise<Engine> | null = null;
let defaults: DeviceOptions | undefined;

/**
 * The device options of a later initEngine() that brings none: the CLI sets its --backend and --adapter here and
 * each command starts the GPU only once its arguments are checked. undefined: Dawn's choice.
 */
export function setDeviceDefaults(opts: DeviceOptions | undefined): void {
  defaults = opts;
}

/** Starts the engine (acquires the GPU). Calling it again, also while it starts, returns the same engine. */
export async function initEngine(opts?: DeviceOptions): Promise<Engine> {
  if (current) return current;
  starting ??= Runtime.create(opts ?? defaults).then(
    (rt) => (current = new Engine(rt)),
    (e: unknown) => {
      starting = null;
      throw e;
    },
  );
  return starting;
}

export function engine(): Engine {
  if (!current) throw new GpuError('the engine is not started: call `await initEngine()` first');
  return current;
}

export function hasEngine(): boolean {
  return current !== null;
}

/** Destroys the device so that the process can exit. */
export function shutdownEngine(): void {
  current?.rt.destroy();
  current = null;
  starting = null;
}

/** Runs fn without recording gradients. */
export function noGrad<T>(fn: () => T): T {
  const e = engine();
  const prev = e.gradEnabled;
  e.gradEnabled = false;
  try {
    return fn();
  } finally {
    e.gradEnabled = prev;
  }
}

function collectTensors(value: unknown, out: Set<Tracked>, depth = 0): void {
  if (!value || typeof value !== 'object' || depth > 4) return;
  if ((value as Tracked).isTensor === true) {
    out.add(value as Tracked);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const v of items) collectTensors(v, out, depth + 1);
}

/**
 * Runs fn and disposes every tensor created inside it except those it returns (found in arrays, maps and
 * plain objects) and those marked with keep(). Returned tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const e = engine();
  const scope = new Set<Tracked>();
  e.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    e.scopes.pop();
  }
  const keepers = new Set<Tracked>();
  collectTensors(result, keepers);
  const parent = e.scopes[e.scopes.length - 1];
  for (const t of scope) {
    if (keepers.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes a tensor from scope tracking so that no tidy() disposes it. */
export function keep<T extends Tracked>(t: T): T {
  for (const s of engine().scopes) s.delete(t);
  return t;
}

export function track(t: Tracked): void {
  const e = current;
  if (e && e.scopes.length) e.scopes[e.scopes.length - 1].add(t);
}
