/**
 * Test-only: a rewrite of a kernel's WGSL just before it is compiled, e.g. to break one kernel on purpose and show
 * that `moefusion selftest` catches it (test/helpers/break-kernel.ts). The program itself never sets it.
 */
let rewriteForTests: ((code: string, label: string) => string) | null = null;

/** Test-only (see rewriteForTests); null removes the rewrite. Pipelines compiled before keep their code. */
export function setKernelRewriteForTests(fn: ((code: string, label: string) => string) | null): void {
  rewriteForTests = fn;
}

/** Compiles each distinct WGSL source once. The key is the final (specialised) source text. */
export class PipelineCache {
  private pipelines = new Map<string, GPUComputePipeline>();
  compiled = 0;

  constructor(
    private device: GPUDevice,
    private onError: (message: string) => void,
  ) {}

  get(code: string, label: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (p) return p;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: rewriteForTests ? rewriteForTests(code, label) : code, label });
    p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
    this.device.popErrorScope().then((err) => {
      if (err) this.onError(`kernel '${label}' failed to compile: ${err.message}`);
    });
    this.pipelines.set(code, p);
    this.compiled++;
    return p;
  }

  get size(): number {
    return this.pipelines.size;
  }
}
