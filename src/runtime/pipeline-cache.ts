/**
 * Test-only: a rewrite of a kernel's WGSL just before it is compiled, e.g. to break one kernel on purpose and show
 * that `moefusion selftest` catches it (test/helpers/break-kernel.ts). The program itself never sets it.
 */
let rewriteForTests: ((code: string, label: string) => string) | null = null;

/** Test-only (see rewriteForTests); null removes the rewrite. Pipelines compiled before keep their code. */
export function setKernelRewriteForTests(fn: ((code: string, label: string) => string) | null): void {
  rewriteForTests = fn;
}

/**
 * Compiles each distinct WGSL source once, asynchronously. The key is the final (specialised) source text.
 * Never with the synchronous createComputePipeline: software drivers (lavapipe) compile under the lock of their
 * queue, so a synchronous compile waits for all GPU work in flight with the JavaScript thread stopped (no timers, no
 * progress, no Ctrl-C handler); the asynchronous one waits on Dawn's worker threads.
 */
export class PipelineCache {
  /** Per source: the pipeline, or the promise of it while it compiles (it resolves to null when it failed). */
  private entries = new Map<string, GPUComputePipeline | Promise<GPUComputePipeline | null>>();
  /** Kernels whose compilation has not finished. */
  pending = 0;
  compiled = 0;

  constructor(
    private device: GPUDevice,
    private onError: (message: string) => void,
  ) {}

  /** The pipeline when it is compiled; otherwise the promise of it (null when it failed to compile: onError was told). */
  get(code: string, label: string): GPUComputePipeline | Promise<GPUComputePipeline | null> {
    const entry = this.entries.get(code);
    if (entry) return entry;
    this.compiled++;
    this.pending++;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: rewriteForTests ? rewriteForTests(code, label) : code, label });
    const compiling = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label }).then(
      (pipeline) => {
        this.entries.set(code, pipeline);
        return pipeline;
      },
      (e: unknown) => {
        this.onError(`kernel '${label}' failed to compile: ${(e as Error).message}`);
        return null; // stays the entry: the kernel is not compiled again
      },
    );
    void compiling.then(() => this.pending--);
    this.device.popErrorScope().then((err) => {
      if (err) this.onError(`kernel '${label}' failed to compile: ${err.message}`);
    });
    this.entries.set(code, compiling);
    return compiling;
  }

  get size(): number {
    return this.entries.size;
  }
}
