/**
 * The kernel families of the case catalogue (src/check/cases/), in the order `moefusion selftest` runs them: each is
 * one self-check there, running its `selftest` cases on the engine's own path (the Winograd convolution forced per
 * tile size) against float64 references computed at run time. The Node tests and the browser page run the same
 * families (every case on every path, and the `quick` ones).
 */
import type { Comparison } from './compare.ts';
import { runFamily, type KernelFamily } from './cases/family.ts';
import { matmulFamily } from './cases/matmul.ts';
import { convForwardFamily, convGradientFamily, winogradFamily } from './cases/conv2d.ts';
import { gateFamily, gateLinearFamily } from './cases/gating.ts';
import { combineFamily } from './cases/combine.ts';
import { attentionFamily } from './cases/attention.ts';
import { resizeFamily } from './cases/resize.ts';
import { softmaxFamily } from './cases/softmax.ts';
import { sumFamily } from './cases/reduce.ts';
import { adamFamily } from './cases/optimizer.ts';

/** One named check: runs its cases and returns every comparison it made. */
export interface SelfCheck {
  name: string;
  run(): Promise<Comparison[]>;
}

export const KERNEL_FAMILIES: KernelFamily[] = [
  matmulFamily,
  convForwardFamily,
  convGradientFamily,
  winogradFamily,
  gateLinearFamily,
  gateFamily,
  combineFamily,
  attentionFamily,
  resizeFamily,
  softmaxFamily,
  sumFamily,
  adamFamily,
];

/** Every kernel check, in the order selftest runs them. */
export function kernelChecks(): SelfCheck[] {
  return KERNEL_FAMILIES.map((f) => ({ name: f.name, run: () => runFamily(f, 'selftest', false) }));
}
