/**
 * Device layer: finds a WebGPU adapter (the browser's navigator.gpu, or Dawn's Node bindings), prefers a real GPU,
 * falls back to a software driver, and asks for the largest limits and the useful optional features.
 */
import { NoAdapterError } from './errors.ts';

export interface DeviceOptions {
  /** Dawn backend: 'vulkan', 'opengles', 'metal', 'd3d12' or 'null'. Default: Dawn's choice. Node only. */
  backend?: string;
  /** Adapter name substring to choose (Dawn's `adapter=` option). Node only. */
  adapter?: string;
  /** Use the compatibility feature level (needed for Dawn's OpenGL ES backend). */
  compatibility?: boolean;
  /**
   * Hide what Dawn itself prints on stderr while it opens the adapter (on software Vulkan, two warnings about
   * reduced dynamic-buffer limits). Default true; Node on Linux, when stderr is a terminal or a pipe (see dawn.ts).
   */
  quiet?: boolean;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  isSoftware: boolean;
}

export interface GpuHandle {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
  features: Set<string>;
  limits: GPUSupportedLimits;
}

const OPTIONAL_FEATURES = ['shader-f16', 'timestamp-query', 'subgroups'] as const;
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const browserGpu = (): GPU | null => (typeof navigator !== 'undefined' && (navigator as { gpu?: GPU }).gpu) || null;

/** Node (Dawn's bindings are loaded only there); anything else is taken for a browser or a worker. */
const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** What a browser user can do when WebGPU is missing or offers no adapter. */
export const BROWSER_ADVICE =
  'Use a browser with WebGPU enabled: Chrome or Edge 113 or later (Windows, macOS, ChromeOS, Android), Safari 26, or Firefox 141 on ' +
  'Windows; elsewhere (e.g. Chrome on Linux) turn on chrome://flags/#enable-unsafe-webgpu, and check chrome://gpu for "WebGPU: Hardware accelerated"';

function summarize(adapter: GPUAdapter, backendHint: string | undefined): AdapterSummary {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const isSoftware = /llvmpipe|lavapipe|swiftshader|software/.test(text) || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    backend: backendHint ?? ((info as unknown as { backendType?: string }).backendType || 'default'),
    isSoftware,
  };
}

/** The adapter's name as info shows it. */
export function adapterName(s: AdapterSummary): string {
  return `${s.vendor} ${s.device || s.description || s.architecture}`.trim();
}

/** Acquires an adapter and a device with maximal limits. Throws NoAdapterError with install advice when none. */
export async function acquireDevice(opts: DeviceOptions = {}): Promise<GpuHandle> {
  const web = browserGpu();
  if (web) return openDevice(web, opts);
  if (!isNode) throw new NoAdapterError('this browser has no WebGPU: navigator.gpu is missing', BROWSER_ADVICE);
  const dawn = await import('./dawn.ts');
  const unavailable = dawn.unavailableBackend(opts.backend);
  if (unavailable) throw new NoAdapterError(unavailable, false);
  return dawn.withQuietStderr(opts.quiet ?? true, async () => {
    const gpu = dawn.createGpu(opts);
    try {
      return await openDevice(gpu, opts);
    } catch (e) {
      if (!(e instanceof NoAdapterError)) throw e;
      if (!opts.adapter) throw new NoAdapterError(e.detail, dawn.installAdvice());
      // The filter matched nothing: name what is there.
      const any = await dawn.createGpu({ ...opts, adapter: undefined }).requestAdapter().catch(() => null);
      if (!any) throw e;
      throw new NoAdapterError(`no adapter's name contains "${opts.adapter}"; available: ${adapterName(summarize(any, opts.backend))}`, false);
    }
  });
}

async function openDevice(gpu: GPU, opts: DeviceOptions): Promise<GpuHandle> {
  const featureLevel = opts.compatibility ? 'compatibility' : 'core';
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel } as GPURequestAdapterOptions);
  } catch (e) {
    throw new NoAdapterError(`requestAdapter failed: ${(e as Error).message}`, browserGpu() ? BROWSER_ADVICE : true);
  }
  if (!adapter) {
    if (browserGpu()) throw new NoAdapterError('the browser has WebGPU but offers no adapter', BROWSER_ADVICE);
    throw new NoAdapterError(`Dawn found none${opts.backend ? ` for backend=${opts.backend}` : ''}`);
  }

  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter!.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name] as number;
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  return {
    gpu,
    adapter,
    device,
    summary: summarize(adapter, opts.backend),
    features: new Set(requiredFeatures),
    limits: device.limits,
  };
}
