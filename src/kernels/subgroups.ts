/** Whether the subgroup kernels (convolution, its gradients, matmul) may run, and with how many lanes. */
import { engine } from '../graph/engine.ts';

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
  const h = engine().rt.handle;
  const info = (h.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  const ok = subgroupsAllowed && h.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
  return ok ? Math.max(8, info?.subgroupMaxSize ?? 8) : 0;
}
