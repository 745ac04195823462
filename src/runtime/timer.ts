/** GPU timestamps (timestamp-query, quantisation disabled by device.ts) written between compute passes. */
const CAPACITY = 4096; // the most one query set may hold

export class Timer {
  private querySet: GPUQuerySet;
  private resolveBuffer: GPUBuffer;
  private labels: string[] = [];
  private resolved = 0;

  constructor(private device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: CAPACITY });
    this.resolveBuffer = device.createBuffer({
      size: CAPACITY * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  mark(encoder: GPUCommandEncoder, label: string): void {
    if (this.labels.length >= CAPACITY) throw new Error(`more than ${CAPACITY} timestamps before readTimestamps()`);
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: this.labels.length },
    });
    pass.end();
    this.labels.push(label);
  }

  /**
   * Called before each submit. Resolves every timestamp so far from index 0: the destination offset of a resolve
   * must be 256-byte aligned, and re-resolving earlier queries is harmless.
   */
  resolve(encoder: GPUCommandEncoder): void {
    if (this.labels.length === this.resolved) return;
    encoder.resolveQuerySet(this.querySet, 0, this.labels.length, this.resolveBuffer, 0);
    this.resolved = this.labels.length;
  }

  async read(): Promise<Array<[string, number]>> {
    const n = this.labels.length;
    if (n === 0) return [];
    const staging = this.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, n * 8);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.destroy();
    const out: Array<[string, number]> = this.labels.map((l, i) => [l, Number(t[i] - t[0]) / 1e6]);
    this.labels = [];
    this.resolved = 0;
    return out;
  }
}
