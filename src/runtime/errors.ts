/** Errors the engine raises. Each says what went wrong and, where it can, what to do about it. */
export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

/** No WebGPU adapter could be acquired. */
export class NoAdapterError extends GpuError {
  constructor(detail: string) {
    super(
      `no WebGPU adapter available (${detail}). On a machine without a GPU install Mesa's software Vulkan driver: ` +
        `run \`npm run setup\` (Debian/Ubuntu: lavapipe from bookworm-backports, packages mesa-vulkan-drivers and libvulkan1).`,
    );
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
