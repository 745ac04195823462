/** `moefusion info [--json]`: the WebGPU adapter in use, its limits and features, and the versions. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { initEngine } from '../tensor/engine.ts';
import { formatBytes } from '../runtime/errors.ts';
import type { AdapterSummary } from '../runtime/device.ts';

export interface EngineInfo {
  version: string;
  webgpu: string;
  node: string;
  adapter: AdapterSummary;
  features: string[];
  limits: Record<string, number>;
}

/** The limits the engine asks for and relies on (device.ts requests the adapter's maximum of each). */
const SHOWN_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minStorageBufferOffsetAlignment',
] as const;
const BYTE_LIMITS = new Set(['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize']);

function packageVersion(): { version: string; webgpu: string } {
  const own = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
  let webgpu = 'unknown';
  try {
    webgpu = (createRequire(import.meta.url)('webgpu/package.json') as { version: string }).version;
  } catch {
    // A build without the package metadata: the version is only informative.
  }
  return { version: own.version, webgpu };
}

/** Starts the engine (if it is not running) and describes it. */
export async function engineInfo(): Promise<EngineInfo> {
  const { rt } = await initEngine();
  const limits: Record<string, number> = {};
  for (const name of SHOWN_LIMITS) limits[name] = rt.limits[name] as number;
  return {
    ...packageVersion(),
    node: process.version,
    adapter: rt.handle.summary,
    features: [...rt.handle.features].sort(),
    limits,
  };
}

export function formatInfo(info: EngineInfo): string {
  const a = info.adapter;
  const rows: Array<[string, string]> = [
    ['moefusion', `${info.version} (webgpu ${info.webgpu}, node ${info.node})`],
    ['adapter', [a.vendor, a.architecture, a.device].filter(Boolean).join(' / ') || 'unnamed'],
    ['description', a.description || '-'],
    ['backend', a.backend],
    ['software', a.backend === 'null' ? 'no GPU at all: the null backend runs nothing (it tests Dawn itself)' : a.isSoftware ? 'yes (a CPU emulates the GPU: expect it to be slow)' : 'no (hardware GPU)'],
    ['features', info.features.join(', ') || 'none'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length), ...Object.keys(info.limits).map((k) => k.length + 2));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push('limits');
  for (const [k, v] of Object.entries(info.limits)) lines.push(`  ${k.padEnd(width - 2)}  ${BYTE_LIMITS.has(k) ? formatBytes(v) : v}`);
  return lines.join('\n');
}

export function infoCommand(): Command {
  return new Command('info')
    .description('show the WebGPU adapter, backend, limits and features in use, and the versions')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: { json?: boolean }) => {
      const info = await engineInfo();
      process.stdout.write((opts.json ? JSON.stringify(info, null, 2) : formatInfo(info)) + '\n');
    });
}
