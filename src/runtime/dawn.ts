/**
 * WebGPU in Node through Dawn (the `webgpu` package): its globals (GPUBufferUsage, GPUBuffer, …), instance options,
 * and a quiet mode for Dawn's own stderr output. Loaded by device.ts only outside browsers.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { create, globals } from 'webgpu';
import { paceDawnPolling } from './dawn-polling.ts';

Object.assign(globalThis, globals);
// Mesa warns on every start without it.
process.env.XDG_RUNTIME_DIR ??= '/tmp';

export function createGpu(opts: { backend?: string; adapter?: string }): GPU {
  paceDawnPolling();
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

/** The backends Dawn has on each platform (the others it does not build there). */
const PLATFORM_BACKENDS: Record<string, { name: string; backends: string[] }> = {
  linux: { name: 'Linux', backends: ['vulkan', 'opengles', 'null'] },
  darwin: { name: 'macOS', backends: ['metal', 'null'] },
  win32: { name: 'Windows', backends: ['d3d12', 'vulkan', 'opengles', 'null'] },
};

/** Why `backend` cannot work on this platform (Metal outside macOS, D3D12 outside Windows), or null when it may. */
export function unavailableBackend(backend: string | undefined, platform: string = process.platform): string | null {
  const p = PLATFORM_BACKENDS[platform];
  if (!backend || !p || p.backends.includes(backend)) return null;
  const home = Object.values(PLATFORM_BACKENDS).find((q) => q.backends.includes(backend) && backend !== 'vulkan' && backend !== 'opengles');
  const usable = p.backends.filter((b) => b !== 'null');
  return `backend=${backend} does not exist on ${p.name}${home ? ` (it is ${home.name}'s)` : ''}: use ${usable.join(' or ')}, or leave the backend out to let Dawn choose`;
}

/** Where the Vulkan loader looks for driver manifests (ICD json files) when no environment variable overrides it. */
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/etc/xdg/vulkan/icd.d'];
/** Where NVIDIA's container toolkit and some images put NVIDIA's manifest, outside the loader's search path. */
export const NVIDIA_CONTAINER_ICD = '/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json';

/** What installAdvice looks at, gathered from this host (tests pass their own). */
export interface VulkanHost {
  /** null when libvulkan.so.1 loads, else the dynamic linker's message. */
  loaderError: string | null;
  /** VK_DRIVER_FILES or VK_ICD_FILENAMES (the loader's overrides), and its name, when set. */
  override: { variable: string; files: string[] } | null;
  /** Driver manifests found in the loader's search path. */
  manifests: string[];
  exists: (path: string) => boolean;
  /** The NVIDIA kernel driver is loaded. */
  nvidia: boolean;
  /** Running from a checkout of the repository (scripts/setup.sh is there). */
  checkout: boolean;
}

/** Loads libvulkan.so.1 as Dawn will (the dynamic linker's search: LD_LIBRARY_PATH, ld.so.cache, default folders). */
function loaderError(): string | null {
  try {
    process.dlopen({ exports: {} }, 'libvulkan.so.1');
  } catch (e) {
    const message = (e as Error).message;
    // Loaded, but it is no Node add-on: that is the expected outcome when the loader is there.
    return /did not self-register|no such symbol|napi_register/i.test(message) ? null : message;
  }
  return null;
}

export function probeVulkan(env: NodeJS.ProcessEnv = process.env): VulkanHost {
  const variable = env.VK_DRIVER_FILES ? 'VK_DRIVER_FILES' : env.VK_ICD_FILENAMES ? 'VK_ICD_FILENAMES' : null;
  const dirs = [...ICD_DIRS, ...(env.XDG_DATA_DIRS ?? '').split(':').filter(Boolean).map((d) => join(d, 'vulkan/icd.d'))];
  const manifests: string[] = [];
  for (const d of new Set(dirs))
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.json')) manifests.push(join(d, f));
    } catch {
      // no such folder
    }
  return {
    loaderError: loaderError(),
    override: variable ? { variable, files: env[variable]!.split(':').filter(Boolean) } : null,
    manifests,
    exists: existsSync,
    nvidia: existsSync('/proc/driver/nvidia/version'),
    checkout: existsSync(resolve(import.meta.dirname, '../../scripts/setup.sh')),
  };
}

/** What to install (or set) when Dawn finds no adapter on this host. */
export function installAdvice(host: VulkanHost | null = process.platform === 'linux' ? probeVulkan() : null): string {
  if (!host) return 'install or update the GPU driver';
  if (host.loaderError) {
    const missing = /no such file/i.test(host.loaderError);
    return `${missing ? 'the Vulkan loader (libvulkan.so.1) is missing' : `the Vulkan loader cannot be loaded (${host.loaderError})`}: install libvulkan1 (Debian/Ubuntu) or vulkan-loader (Fedora/RHEL), and a Vulkan driver for the GPU`;
  }
  const lavapipe = `Mesa's software driver lavapipe to run on the CPU (Debian/Ubuntu: mesa-vulkan-drivers, Mesa 23 or newer; on Debian 12 from bookworm-backports${host.checkout ? '; `npm run setup` in the repository does this' : ''})`;
  if (host.override) {
    const { variable, files } = host.override;
    const absent = files.filter((f) => !host.exists(f));
    if (absent.length)
      return `${variable}=${files.join(':')} names no driver manifest at ${absent.join(', ')}: unset it, or point it at the driver's ICD json${host.manifests.length ? ` (installed: ${host.manifests.join(', ')})` : ''}`;
    return `the Vulkan driver named by ${variable}=${files.join(':')} offered no adapter: check that it matches the GPU and its kernel driver, or unset ${variable}`;
  }
  if (host.nvidia && !host.manifests.some((m) => /nvidia/i.test(m))) {
    if (host.exists(NVIDIA_CONTAINER_ICD)) return `the NVIDIA driver's Vulkan manifest is at ${NVIDIA_CONTAINER_ICD}, outside the loader's search path: set VK_DRIVER_FILES=${NVIDIA_CONTAINER_ICD}`;
    return "an NVIDIA GPU driver is loaded but not its Vulkan part (nvidia_icd.json): install it (Debian/Ubuntu: libnvidia-gl-<driver version>), or in a container enable the graphics capability (NVIDIA_DRIVER_CAPABILITIES=all)";
  }
  if (!host.manifests.length) return `no Vulkan driver is installed (no ICD manifest in ${ICD_DIRS.slice(0, 2).join(' or ')}): install the GPU's Vulkan driver, or ${lavapipe}`;
  return `no Vulkan driver answered (installed: ${host.manifests.map((m) => m.split('/').pop()).join(', ')}): install or update the GPU's Vulkan driver, or ${lavapipe}`;
}
