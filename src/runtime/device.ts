/**
 * Device layer: finds a WebGPU adapter through Dawn's Node bindings, prefers a real GPU, falls back to the
 * software Vulkan driver, and asks for the largest limits and the useful optional features.
 */
import './globals.ts';
import { create } from 'webgpu';
import { NoAdapterError } from './errors.ts';

export interface DeviceOptions {
  /** Dawn backend: 'vulkan', 'opengles', 'metal', 'd3d12' or 'null'. Default: Dawn's choice. */
  backend?: string;
  /** Adapter name substring to choose (Dawn's `adapter=` option). */
  adapter?: string;
  /** Use the compatibility feature level (needed for Dawn's OpenGL ES backend). */
  compatibility?: boolean;
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

function dawnOptions(opts: DeviceOptions): string[] {
  const o = ['disable-dawn-features=timestamp_quantization'];
  if (opts.backend) o.push(`backend=${opts.backend}`);
  if (opts.adapter) o.push(`adapter=${opts.adapter}`);
  return o;
}

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

/** Acquires an adapter and a device with maximal limits. Throws NoAdapterError with install advice when none. */
export async function acquireDevice(opts: DeviceOptions = {}): Promise<GpuHandle> {
  const gpu = create(dawnOptions(opts)) as GPU;
  const featureLevel = opts.compatibility ? 'compatibility' : 'core';
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel } as GPURequestAdapterOptions);
  } catch (e) {
    throw new NoAdapterError(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError(`Dawn found none${opts.backend ? ` for backend=${opts.backend}` : ''}`);

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
