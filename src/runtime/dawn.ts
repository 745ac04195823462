/**
 * WebGPU in Node through Dawn (the `webgpu` package): its globals (GPUBufferUsage, GPUBuffer, …), instance options,
 * and a quiet mode for Dawn's own stderr output. Loaded by device.ts only outside browsers.
 */
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
// Mesa warns on every start without it.
process.env.XDG_RUNTIME_DIR ??= '/tmp';

export function createGpu(opts: { backend?: string; adapter?: string }): GPU {
  const o = ['disable-dawn-features=timestamp_quantization'];
  if (opts.backend) o.push(`backend=${opts.backend}`);
  if (opts.adapter) o.push(`adapter=${opts.adapter}`);
  return create(o) as GPU;
}

/**
 * Runs fn with file descriptor 2 pointed at /dev/null when `quiet` (Linux): Dawn prints adapter warnings from
 * native code straight to stderr, which no JavaScript stream can filter. POSIX gives the lowest free descriptor to
 * the next open, so closing 2 and opening /dev/null puts it at 2; the original goes back the same way, reopened
 * through /proc. Only for terminals and pipes: a reopened regular file would get its own write offset, and writes
 * through a descriptor it shared (`> log 2>&1`) could overwrite each other, so files keep the warnings.
 */
export async function withQuietStderr<T>(quiet: boolean, fn: () => Promise<T>): Promise<T> {
  if (!quiet || process.platform !== 'linux') return fn();
  try {
    if (fstatSync(2).isFile()) return fn();
  } catch {
    return fn();
  }
  let saved: number;
  try {
    saved = openSync('/proc/self/fd/2', 'a');
  } catch {
    return fn(); // no stderr to protect, or no /proc
  }
  let swapped = false;
  try {
    closeSync(2);
    swapped = openSync('/dev/null', 'a') === 2;
  } catch {
    // Leave stderr as it is.
  }
  try {
    return await fn();
  } finally {
    if (swapped) {
      closeSync(2);
      openSync(`/proc/self/fd/${saved}`, 'a');
    }
    closeSync(saved);
  }
}

/** The Vulkan loader's library, where Linux distributions put it. */
const VULKAN_LOADER = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/usr/lib/aarch64-linux-gnu/libvulkan.so.1', '/usr/lib64/libvulkan.so.1', '/usr/lib/libvulkan.so.1', '/lib/x86_64-linux-gnu/libvulkan.so.1'];

/** What to install when Dawn finds no adapter on this host. */
export function installAdvice(): string {
  if (process.platform !== 'linux') return 'install or update the GPU driver';
  if (!VULKAN_LOADER.some((p) => existsSync(p)))
    return 'the Vulkan loader (libvulkan.so.1) is missing: install libvulkan1 (Debian/Ubuntu) or vulkan-loader (Fedora/RHEL), and a Vulkan driver';
  return "no Vulkan driver answered: install the GPU's Vulkan driver, or Mesa's software driver lavapipe (Debian/Ubuntu: mesa-vulkan-drivers; `npm run setup` in the repository) to run on the CPU";
}
