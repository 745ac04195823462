/**
 * Kernel variants: which of its paths a kernel with several runs. A variant is a parameter of the dispatch (the
 * convolutions and their gradients, matmul, attention, and the ops over them take one); without it a dispatch runs
 * the engine's default variant, kept per engine (MOEFUSION_CONV and MOEFUSION_CONV_TABLE, read when first asked for)
 * and changed only for the length of a call by withKernelVariant (a whole model under one variant: parity, A/B timing).
 */
import { engine, type Engine } from '../tensor/engine.ts';
import { builtInTable, convChoiceFromEnvironment, convTableFromEnvironment, lookUp, type ConvAlgorithm, type ConvChoice, type ConvShape, type ConvTable } from './conv2d-choice.ts';

export interface KernelVariant {
  /** The subgroup kernels may run (where the adapter has subgroups of 8 lanes or more); false: the portable ones. */
  subgroups: boolean;
  /** The direct 3×3 kernels may share input rows between lanes (software adapters with fixed-size subgroups). */
  rowSharing: boolean;
  /** The algorithm of 3×3, padding-1 convolutions: 'auto' picks by `convTable`, which needs subgroups. */
  conv: ConvChoice;
  /** The measured table of the automatic choice; null: the direct kernel everywhere. */
  convTable: ConvTable | null;
}

const defaults = new WeakMap<Engine, KernelVariant>();

/** The variant the environment asks for: every fast path allowed, MOEFUSION_CONV's algorithm, MOEFUSION_CONV_TABLE's table or the adapter's built-in one. */
export function variantFromEnvironment(): KernelVariant {
  return { subgroups: true, rowSharing: true, conv: convChoiceFromEnvironment(), convTable: convTableFromEnvironment() ?? builtInTable() };
}

/** The engine's default variant, what a dispatch given none runs. */
export function engineVariant(): KernelVariant {
  const e = engine();
  let v = defaults.get(e);
  if (!v) defaults.set(e, (v = variantFromEnvironment()));
  return v;
}

/** Runs fn with the engine's default variant changed by `change` (every dispatch given none), restored afterwards. */
export async function withKernelVariant<T>(change: Partial<KernelVariant>, fn: () => Promise<T> | T): Promise<T> {
  const e = engine();
  const before = engineVariant();
  defaults.set(e, { ...before, ...change });
  try {
    return await fn();
  } finally {
    defaults.set(e, before);
  }
}

/**
 * The largest subgroup size when the variant's subgroup kernels may run (allowed, the feature is on, every subgroup
 * has at least 8 lanes), else 0. lavapipe: 8, the lanes of one 256-bit vector.
 */
export function subgroupSize(v: KernelVariant = engineVariant()): number {
  const info = sizes();
  const ok = v.subgroups && engine().rt.handle.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
  return ok ? Math.max(8, info?.subgroupMaxSize ?? 8) : 0;
}

/** subgroupSize(v) when every subgroup has that many lanes (the minimum and maximum sizes agree), else 0. */
export function fixedSubgroupSize(v: KernelVariant = engineVariant()): number {
  const info = sizes();
  return info?.subgroupMinSize === info?.subgroupMaxSize ? subgroupSize(v) : 0;
}

function sizes(): { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined {
  return (engine().rt.handle.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
}

/** The Winograd output tile (4 or 6) the variant runs a 3×3, padding-1 convolution of this shape with, or 0: the direct kernel. */
export function convAlgorithm(s: ConvShape, v: KernelVariant = engineVariant()): number {
  const tile = (a: ConvAlgorithm) => (a === 'winograd4' ? 4 : a === 'winograd6' ? 6 : 0);
  if (v.conv !== 'auto') return tile(v.conv);
  return subgroupSize(v) && v.convTable ? tile(lookUp(v.convTable, s)) : 0;
}
