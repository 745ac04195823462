/** Errors the engine raises. Each says what went wrong and, where it can, what to do about it. */
export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

/** No WebGPU adapter could be acquired. */
export class NoAdapterError extends GpuError {
  /** `advice`: append what to install (Node: from dawn.ts's installAdvice, set by device.ts). */
  constructor(
    readonly detail: string,
    advice: boolean | string = true,
  ) {
    const what = typeof advice === 'string' ? ` ${advice}.` : advice ? ' Install a GPU driver with Vulkan, Metal or D3D12 support, or a software driver (`npm run setup` installs Mesa lavapipe on Debian/Ubuntu).' : '';
    super(`no WebGPU adapter available (${detail}).${what}`);
    this.name = 'NoAdapterError';
  }
}

/** The device was lost (driver crash, reset, out of memory) or destroyed. */
export class DeviceLostError extends GpuError {
  constructor(reason: string, message: string) {
    super(`the GPU device was lost (${reason}): ${message || 'no details'}`);
    this.name = 'DeviceLostError';
  }
}

/** A request exceeds what the adapter allows (buffer size, workgroups, memory). */
export class LimitError extends GpuError {
  constructor(message: string) {
    super(message);
    this.name = 'LimitError';
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
