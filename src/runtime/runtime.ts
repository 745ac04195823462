/**
 * The runtime: records kernel dispatches into one command encoder (one compute pass while possible), submits
 * periodically, owns the buffer pool, the pipeline cache and a ring of uniform parameters, reads buffers back
 * asynchronously and turns WebGPU errors and device loss into thrown errors.
 *
 * Kernels compile asynchronously (pipeline-cache.ts): a command recorded while a kernel it needs, or one before it,
 * is still compiling waits in a backlog and is encoded, in recording order, once that kernel is ready. Recording
 * never blocks the JavaScript thread, so timers, progress and signal handlers run while the GPU works.
 */
import { acquireDevice, type DeviceOptions, type GpuHandle } from './device.ts';
import { BufferPool } from './buffer-pool.ts';
import { PipelineCache } from './pipeline-cache.ts';
import { DeviceLostError, GpuError, LimitError } from './errors.ts';
import { Timer } from './timer.ts';

export interface BufferRange {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export interface DispatchSpec {
  /** Shown in errors and timings. */
  label: string;
  /** The shader key: names `code` (one text per key), under which the pipeline cache keeps its pipeline. */
  key: string;
  /** Complete WGSL with entry point `main`; storage buffers at bindings 0..n-1, the uniform params (if any) at n. */
  code: string;
  buffers: (GPUBuffer | BufferRange)[];
  params?: Uint8Array;
  workgroups: [number, number?, number?];
  /** Indices into `buffers` of the bindings the kernel writes (their write versions advance). */
  written?: number[];
}

function bufferOf(b: GPUBuffer | BufferRange): GPUBuffer {
  return b instanceof GPUBuffer ? b : b.buffer;
}

/** A command recorded behind a kernel that is still compiling: `run` encodes it once `ready` has settled. */
interface Deferred {
  ready?: Promise<unknown>;
  run(): void;
}

const PARAM_STRIDE = 256; // minUniformBufferOffsetAlignment
const PARAM_SLOTS = 2048; // dispatches per batch before a forced submit
const SUBMIT_EVERY = 256; // dispatches between submits, so the GPU starts early and bind groups are freed
/**
 * Dawn frees finished work (command buffers, bind groups) only when JavaScript yields to the event loop. A
 * synchronous loop that records more than this many dispatches without awaiting anything grows memory until
 * lavapipe crashes (seen between 50k and 100k dispatches); past this bound the runtime throws a clear error instead.
 */
export const MAX_DISPATCHES_WITHOUT_WAITING = 32768;

export class Runtime {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly timer: Timer | null;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private paramData = new Uint8Array(PARAM_STRIDE * PARAM_SLOTS);
  private paramBuffer: GPUBuffer;
  private paramSlot = 0;
  private sinceSubmit = 0;
  private sinceYield = 0;
  private error: GpuError | null = null;
  private destroyed = false;
  private backlog: Deferred[] = [];
  private draining: Promise<void> | null = null;
  dispatchCount = 0;
  /** Dispatches per kernel label since the runtime started (tests check which kernels ran). */
  readonly dispatchesByLabel = new Map<string, number>();
  /** Writes recorded into each buffer (dispatch outputs, copies, clears, uploads): see writeVersion. */
  private writes = new WeakMap<GPUBuffer, number>();
  /** When true, timestamp() records GPU timestamps (benchmarks turn it on). */
  profiling = false;

  constructor(readonly handle: GpuHandle) {
    this.device = handle.device;
    this.pool = new BufferPool(this.device, handle.limits.maxBufferSize);
    this.pipelines = new PipelineCache(this.device, (m) => this.fail(new GpuError(m)));
    this.paramBuffer = this.device.createBuffer({
      size: this.paramData.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.timer = handle.features.has('timestamp-query') ? new Timer(this.device) : null;
    this.device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      const kind = e instanceof GPUOutOfMemoryError ? 'out of GPU memory' : 'WebGPU error';
      this.fail(new GpuError(`${kind}: ${e.message}`));
    });
    this.device.lost.then((info) => {
      if (!this.destroyed) this.fail(new DeviceLostError(info.reason, info.message));
    });
  }

  static async create(opts?: DeviceOptions): Promise<Runtime> {
    return new Runtime(await acquireDevice(opts));
  }

  get limits(): GPUSupportedLimits {
    return this.handle.limits;
  }

  /** A lower binding limit than the adapter's, so that tests can split small tensors as large ones are split. */
  bindingLimitForTests: number | null = null;

  /** Largest byte range one storage binding may cover on this adapter. */
  get maxBinding(): number {
    return Math.min(this.handle.limits.maxStorageBufferBindingSize, this.bindingLimitForTests ?? Infinity);
  }

  private fail(e: GpuError): void {
    this.error ??= e;
  }

  /** Throws the first error WebGPU reported since the last check. */
  check(): void {
    if (this.error) {
      const e = this.error;
      if (!(e instanceof DeviceLostError)) this.error = null;
      throw e;
    }
    if (this.destroyed) throw new GpuError('the runtime was destroyed');
  }

  private getEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private getPass(): GPUComputePassEncoder {
    return (this.pass ??= this.getEncoder().beginComputePass());
  }

  /** Ends the current compute pass so that copies or timestamps can be recorded. */
  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /**
   * Queues `run` behind the backlog when there is one or when `ready` is given (a kernel still compiling); returns
   * false when the caller should run it now.
   */
  private defer(run: () => void, ready?: Promise<unknown>): boolean {
    if (!ready && !this.backlog.length) return false;
    this.backlog.push({ ready, run });
    this.draining ??= this.drain();
    return true;
  }

  /** Encodes the backlog in order, waiting for each kernel to compile. */
  private async drain(): Promise<void> {
    while (this.backlog.length && !this.destroyed) {
      const next = this.backlog[0];
      if (next.ready) await next.ready;
      if (this.destroyed) break;
      this.backlog.shift();
      try {
        next.run();
      } catch (e) {
        this.fail(e instanceof GpuError ? e : new GpuError((e as Error).message));
      }
    }
    this.draining = null;
  }

  /** Resolves when everything recorded so far has been encoded (no kernel it needs is still compiling). */
  private encoded(): Promise<void> {
    return new Promise((done) => {
      if (!this.defer(done)) done();
    });
  }

  dispatch(spec: DispatchSpec): void {
    this.check();
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new LimitError(`kernel '${spec.label}': workgroup grid ${x}×${y}×${z} exceeds ${maxWg} per dimension`);
    if (this.sinceYield === 0) {
      const reset = () => (this.sinceYield = 0);
      void this.device.queue.onSubmittedWorkDone().then(reset, reset);
    }
    if (++this.sinceYield > MAX_DISPATCHES_WITHOUT_WAITING)
      throw new GpuError(
        `${MAX_DISPATCHES_WITHOUT_WAITING} GPU dispatches were recorded without awaiting anything: ` +
          'await a result (e.g. `await loss.item()`) or `engine().rt.sync()` in long synchronous loops, so the GPU can release finished work',
      );
    const pipeline = this.pipelines.get(spec.key, spec.code, spec.label);
    this.dispatchCount++;
    this.dispatchesByLabel.set(spec.label, (this.dispatchesByLabel.get(spec.label) ?? 0) + 1);
    for (const i of spec.written ?? []) this.markWritten(bufferOf(spec.buffers[i]));
    if (pipeline instanceof Promise) {
      const run = () => {
        const ready = this.pipelines.get(spec.key, spec.code, spec.label);
        if (!(ready instanceof Promise)) this.encodeDispatch(spec, ready); // else it failed to compile: check() says so
      };
      this.defer(run, pipeline);
    } else if (!this.defer(() => this.encodeDispatch(spec, pipeline))) this.encodeDispatch(spec, pipeline);
  }

  private encodeDispatch(spec: DispatchSpec, pipeline: GPUComputePipeline): void {
    const [x, y = 1, z = 1] = spec.workgroups;
    if (spec.params && this.paramSlot >= PARAM_SLOTS) this.submit();
    const entries: GPUBindGroupEntry[] = spec.buffers.map((b, i) => ({
      binding: i,
      resource: b instanceof GPUBuffer ? { buffer: b } : { buffer: b.buffer, offset: b.offset ?? 0, size: b.size },
    }));
    if (spec.params) {
      const offset = this.paramSlot++ * PARAM_STRIDE;
      this.paramData.set(spec.params, offset);
      entries.push({ binding: spec.buffers.length, resource: { buffer: this.paramBuffer, offset, size: spec.params.byteLength } });
    }
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: spec.label });
    const pass = this.getPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (++this.sinceSubmit >= SUBMIT_EVERY) this.submit();
  }

  /**
   * How many writes into `buffer` have been recorded so far: a value derived from the buffer's contents (transformed
   * weights) is still valid while this number is unchanged. Every write goes through the runtime, so none is missed.
   */
  writeVersion(buffer: GPUBuffer): number {
    return this.writes.get(buffer) ?? 0;
  }

  private markWritten(buffer: GPUBuffer): void {
    this.writes.set(buffer, (this.writes.get(buffer) ?? 0) + 1);
  }

  /** Records a buffer-to-buffer copy in command order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.check();
    this.markWritten(dst);
    const run = () => {
      this.endPass();
      this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    };
    if (!this.defer(run)) run();
  }

  /** Records a zero fill in command order. */
  clear(buffer: GPUBuffer, offset = 0, bytes?: number): void {
    this.check();
    this.markWritten(buffer);
    const run = () => {
      this.endPass();
      this.getEncoder().clearBuffer(buffer, offset, bytes);
    };
    if (!this.defer(run)) run();
  }

  /** Writes data into a buffer after all work recorded so far (the buffer may be a recycled one still in use). */
  upload(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.check();
    this.markWritten(buffer);
    const write = (bytes: ArrayBufferView) => {
      if (this.encoder) this.submit();
      this.device.queue.writeBuffer(buffer, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    };
    if (!this.backlog.length) return write(data);
    // Written later: the caller's array may have changed by then, so a copy of it as it is now.
    const copy = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.defer(() => write(copy));
  }

  /** Told, with its label, when the GPU has finished the work recorded before each timestamp() mark (progress). */
  onMark: ((label: string) => void) | null = null;

  /**
   * Marks a stage at this point of the command stream: a GPU timestamp when profiling with timestamp-query, and a
   * call of onMark when the GPU gets there.
   */
  timestamp(label: string): void {
    const listener = this.onMark;
    const timer = this.profiling ? this.timer : null;
    const run = () => {
      if (listener) {
        this.submit();
        this.device.queue.onSubmittedWorkDone().then(() => listener(label), () => {});
      }
      if (!timer) return;
      this.endPass();
      timer.mark(this.getEncoder(), label);
    };
    if (!this.defer(run)) run();
  }

  /** Submits everything recorded so far (once the kernels it needs are compiled). */
  flush(): void {
    this.check();
    if (!this.defer(() => this.submit())) this.submit();
  }

  private submit(): void {
    this.endPass();
    if (!this.encoder) return;
    if (this.paramSlot > 0) this.device.queue.writeBuffer(this.paramBuffer, 0, this.paramData, 0, this.paramSlot * PARAM_STRIDE);
    this.timer?.resolve(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.paramSlot = 0;
    this.sinceSubmit = 0;
  }

  /** Waits until the GPU has finished all submitted work, then reports any error. */
  async sync(): Promise<void> {
    this.flush();
    await this.encoded();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  /** Reads `bytes` bytes of a buffer back to the CPU after all recorded work. */
  async read(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.check();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.copy(buffer, offset, staging, 0, size);
    this.flush();
    await this.encoded();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.check();
      throw new GpuError(`reading a buffer back failed: ${(e as Error).message}`);
    }
    this.check();
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Timestamps recorded since the last call, as [label, milliseconds since the first] pairs. */
  async readTimestamps(): Promise<Array<[string, number]>> {
    if (!this.timer) return [];
    this.flush();
    await this.encoded();
    return this.timer.read();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.backlog = [];
    this.encoder = null;
    this.pass = null;
    this.pool.trim();
    this.device.destroy();
  }
}
