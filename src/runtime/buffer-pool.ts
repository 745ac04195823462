/**
 * Reuses GPU buffers by size class so that training loops do not create and destroy buffers every step.
 * Size classes are powers of two and their midpoints (≤ 33% waste). Tracks live and peak bytes.
 */
import { LimitError, formatBytes } from './errors.ts';

/** Usage of every tensor buffer (read when a buffer is made: the WebGPU globals exist only once a device does). */
const bufferUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  const p = 2 ** Math.floor(Math.log2(b));
  if (b === p) return p;
  const mid = p + p / 2;
  return b <= mid ? Math.ceil(mid / 256) * 256 : 2 * p;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  /** Bytes held by live (acquired) buffers. */
  liveBytes = 0;
  /** Bytes held by buffers in the free lists. */
  idleBytes = 0;
  /** Highest liveBytes seen since the last resetPeak(). */
  peakBytes = 0;

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
  ) {}

  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    let cls = sizeClass(bytes);
    if (cls > this.maxBufferSize) {
      if (bytes <= this.maxBufferSize) cls = Math.ceil(bytes / 256) * 256;
      else
        throw new LimitError(
          `${what} needs ${formatBytes(bytes)}, but this adapter allows at most ${formatBytes(this.maxBufferSize)} in one buffer`,
        );
    }
    const list = this.free.get(cls);
    let buf = list?.pop();
    if (buf) this.idleBytes -= cls;
    else {
      buf = this.device.createBuffer({ size: cls, usage: bufferUsage() });
      this.sizes.set(buf, cls);
    }
    this.liveBytes += cls;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buf;
  }

  release(buf: GPUBuffer): void {
    const cls = this.sizes.get(buf);
    if (cls === undefined) throw new Error('BufferPool.release: buffer not from this pool');
    this.liveBytes -= cls;
    this.idleBytes += cls;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buf);
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Destroys idle buffers (returns memory to the driver). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.idleBytes = 0;
  }
}
