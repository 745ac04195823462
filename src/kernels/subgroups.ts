/** Whether the subgroup kernels (convolution, its gradients, matmul) may run, and with how many lanes. */
import { engine } from '../tensor/engine.ts';

let subgroupsAllowed = true;

/** Turns the subgroup kernels off or on (tests of the fallbacks, A/B timing). */
export function setSubgroupsAllowed(on: boolean): void {
  subgroupsAllowed = on;
}

/**
 * The largest subgroup size when the subgroup kernels may run (allowed, the feature is on, every subgroup has at
 * least 8 lanes), else 0. lavapipe: 8, the lanes of one 256-bit vector.
 */
export function subgroupSize(): number {
  const info = sizes();
  const ok = subgroupsAllowed && engine().rt.handle.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
  return ok ? Math.max(8, info?.subgroupMaxSize ?? 8) : 0;
}

/** subgroupSize() when every subgroup has that many lanes (the minimum and maximum sizes agree), else 0. */
export function fixedSubgroupSize(): number {
  const info = sizes();
  return info?.subgroupMinSize === info?.subgroupMaxSize ? subgroupSize() : 0;
}

function sizes(): { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined {
  return (engine().rt.handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
}
