/**
 * Test-only: a rewrite of a kernel's WGSL just before it is compiled, e.g. to break one kernel on purpose and show
 * that `moefusion selftest` catches it (test/helpers/break-kernel.ts). The program itself never sets it.
 */
let rewriteForTests: ((code: string, label: string) => string) | null = null;

/** Test-only (see rewriteForTests); null removes the rewrite. Pipelines compiled before keep their code. */
export function setKernelRewriteForTests(fn: ((code: string, label: string) => string) | null): void {
  rewriteForTests = fn;
}

/** A compiled kernel, or the promise of it while it compiles (it resolves to null when it failed). */
interface Entry {
  code: string;
  pipeline: GPUComputePipeline | Promise<GPUComputePipeline | null>;
}

/**
 * Compiles each shader once, asynchronously, under its key (src/kernels/program.ts: the kernel's name and the
 * parameters that change its WGSL); a key that comes with another text than the one compiled under it is an error.
 * Never with the synchronous createComputePipeline: software drivers (lavapipe) compile under the lock of their
 * queue, so a synchronous compile waits for all GPU work in flight with the JavaScript thread stopped (no timers, no
 * progress, no Ctrl-C handler); the asynchronous one waits on Dawn's worker threads.
 */
export class PipelineCache {
  private entries = new Map<string, Entry>();
  /** Kernels whose compilation has not finished. */
  pending = 0;
  compiled = 0;

  constructor(
    private device: GPUDevice,
    private onError: (message: string) => void,
  ) {}

  /** The pipeline when it is compiled; otherwise the promise of it (null when it failed to compile: onError was told). */
  get(key: string, code: string, label: string): GPUComputePipeline | Promise<GPUComputePipeline | null> {
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.code !== code) throw new Error(`kernel '${label}': shader key '${key}' was compiled from another WGSL text`);
      return entry.pipeline;
    }
    this.compiled++;
    this.pending++;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: rewriteForTests ? rewriteForTests(code, label) : code, label });
    const compiling = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label }).then(
      (pipeline) => {
        added.pipeline = pipeline;
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
    const added: Entry = { code, pipeline: compiling };
    this.entries.set(key, added);
    return compiling;
  }

  get size(): number {
    return this.entries.size;
  }
}
