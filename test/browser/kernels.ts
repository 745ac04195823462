/**
 * The kernel catalogue's quick cases (src/check/cases/: the `quick` ones of each family) bundled for a browser
 * (test/browser.test.ts runs it in Chromium), against their float64 references, on every path the family has on this
 * adapter (the subgroup kernels and the portable ones where the engine uses subgroups, Winograd forced per tile size).
 * window.moefusionKernelChecks.run() returns one result per family and path instead of throwing.
 */
import { initEngine } from '../../src/tensor/engine.ts';
import { subgroupSize } from '../../src/kernels/variant.ts';
import { adapterName } from '../../src/runtime/device.ts';
import { describeComparison } from '../../src/check/compare.ts';
import { KERNEL_FAMILIES } from '../../src/check/kernels.ts';
import { runCases } from '../../src/check/cases/family.ts';
import { kernelPaths } from '../../src/check/paths.ts';

export interface CheckResult {
  name: string;
  /** The path (src/check/paths.ts): 'subgroups+rows', 'subgroups', 'portable', 'default', 'F(4×4) subgroups' … */
  mode: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface KernelReport {
  adapter: string;
  /** The adapter's subgroup sizes, and the size the engine's subgroup kernels use (0: they are off here). */
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  engineSubgroupSize: number;
  features: string[];
  limits: { maxComputeInvocationsPerWorkgroup: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number };
  results: CheckResult[];
}

const families = KERNEL_FAMILIES.filter((f) => f.cases.some((c) => c.quick));

/** Runs the families whose names contain `filter` (all by default). */
async function run(filter = ''): Promise<KernelReport> {
  const e = await initEngine();
  const { handle } = e.rt;
  const sizes = (handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const results: CheckResult[] = [];
  for (const f of families) {
    if (!f.name.includes(filter)) continue;
    for (const path of kernelPaths(f.paths)) {
      const started = performance.now();
      try {
        const list = await runCases(f, path, 'quick');
        e.rt.check();
        const failing = list.filter((c) => !c.pass);
        const error = failing.length ? failing.slice(0, 5).map(describeComparison).join('; ') : undefined;
        results.push({ name: f.name, mode: path.name, ok: !failing.length, ms: performance.now() - started, error });
      } catch (err) {
        results.push({ name: f.name, mode: path.name, ok: false, ms: performance.now() - started, error: (err as Error).message || String(err) });
      }
    }
  }
  return {
    adapter: adapterName(handle.summary),
    subgroupMinSize: sizes?.subgroupMinSize ?? null,
    subgroupMaxSize: sizes?.subgroupMaxSize ?? null,
    engineSubgroupSize: subgroupSize(),
    features: [...handle.features],
    limits: {
      maxComputeInvocationsPerWorkgroup: handle.limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBufferBindingSize: handle.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: handle.limits.maxComputeWorkgroupStorageSize,
    },
    results,
  };
}

(globalThis as { moefusionKernelChecks?: { run: typeof run; names: string[] } }).moefusionKernelChecks = { run, names: families.map((f) => f.name) };
