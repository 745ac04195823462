/**
 * Scores source pairs on worker threads: the metrics are plain CPU loops, so pairs scored side by side use
 * every core. Each job is one pair with all its fused images, so that a worker computes the sources' shared
 * maps (memoised per image) once per pair.
 */
import { Worker } from 'node:worker_threads';
import type { Image } from '../io/image.ts';
import type { MetricValues, ProtocolName } from './protocols.ts';

export interface ScoreJob {
  id: number;
  protocol: ProtocolName;
  ir: Image;
  vi: Image;
  fused: Image[];
}

export type ScoreReply = { id: number; values: MetricValues[] } | { id: number; error: string };

interface Waiting {
  job: ScoreJob;
  resolve: (values: MetricValues[]) => void;
  reject: (error: Error) => void;
}

/**
 * The worker's entry, as code evaluated by the worker. Compiled (dist/), it imports score-worker.js; from the
 * TypeScript sources it registers tsx's loader first, because a worker does not inherit the loader its parent
 * registered.
 */
function bootstrap(): string {
  const compiled = !import.meta.url.endsWith('.ts');
  const worker = JSON.stringify(new URL(compiled ? './score-worker.js' : './score-worker.ts', import.meta.url).href);
  if (compiled) return `import(${worker});`;
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${worker}); });`;
}

export class ScorePool {
  private readonly idle: Worker[] = [];
  private readonly queue: Waiting[] = [];
  private readonly running = new Map<Worker, Waiting>();
  private readonly workers: Worker[] = [];
  private nextId = 0;
  private failure?: Error;

  constructor(
    private readonly protocol: ProtocolName,
    size: number,
  ) {
    for (let k = 0; k < size; k++) {
      const worker = new Worker(bootstrap(), { eval: true });
      worker.on('message', (reply: ScoreReply) => this.finish(worker, reply));
      worker.on('error', (e) => this.fail(new Error(`a metrics worker failed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a metrics worker exited with code ${code}`));
      });
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  /** The metric values of each fused image against the pair (ir, vi), in the order given. */
  score(ir: Image, vi: Image, fused: Image[]): Promise<MetricValues[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, protocol: this.protocol, ir, vi, fused }, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the metrics pool is closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const worker = this.idle.pop()!;
      const waiting = this.queue.shift()!;
      this.running.set(worker, waiting);
      worker.postMessage(waiting.job);
    }
  }

  private finish(worker: Worker, reply: ScoreReply): void {
    const waiting = this.running.get(worker)!;
    this.running.delete(worker);
    this.idle.push(worker);
    if ('error' in reply) waiting.reject(new Error(reply.error));
    else waiting.resolve(reply.values);
    this.dispatch();
  }

  /** A broken worker fails every job, running or queued: the evaluation stops rather than hang. */
  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiting of [...this.running.values(), ...this.queue.splice(0)]) waiting.reject(error);
    this.running.clear();
  }
}
