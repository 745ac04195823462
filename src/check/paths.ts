/**
 * The kernel paths a test case runs under, shared by the Node tests, the browser page and `moefusion selftest`: the
 * subgroup kernels and the portable ones, the direct convolution with and without input rows shared between lanes,
 * and the Winograd convolution forced at each tile size. A path is a kernel variant (src/kernels/variant.ts) that the
 * runners pass to the ops they call; nothing global changes between paths.
 */
import { engineVariant, subgroupSize, type KernelVariant } from '../kernels/variant.ts';

/**
 * Which paths a kernel has: 'single' (one, no switch), 'subgroups' (subgroup kernels, portable kernels), 'conv'
 * (the direct convolution: subgroups with shared rows, subgroups, portable) and 'winograd' (Winograd forced,
 * F(4×4) and F(6×6), each with the subgroup multiply and the portable one).
 */
export type PathSet = 'single' | 'subgroups' | 'conv' | 'winograd';

export interface KernelPath {
  /** For messages: 'default', 'subgroups+rows', 'subgroups', 'portable', 'F(4×4) subgroups' … */
  name: string;
  /** The variant the path's dispatches run (the engine's default with the path's switches). */
  variant: KernelVariant;
  /** The Winograd tile size when forced, else null. */
  tile: 4 | 6 | null;
}

/**
 * The paths of `set` this adapter has (a subgroup path only where the engine uses subgroups). `every` false: only
 * what the engine itself would run (selftest), i.e. its default variant, with Winograd still forced per tile size.
 */
export function kernelPaths(set: PathSet, every = true): KernelPath[] {
  const engine = engineVariant();
  const sub = subgroupSize(engine) > 0;
  const path = (name: string, change: Partial<KernelVariant>, tile: 4 | 6 | null = null): KernelPath => ({ name, variant: { ...engine, ...change }, tile });
  if (set === 'winograd')
    return ([4, 6] as const).flatMap((tile) =>
      (every && sub ? [true, false] : [sub]).map((subgroups) =>
        path(`F(${tile}×${tile})${every ? (subgroups ? ' subgroups' : ' portable') : ''}`, { subgroups, conv: `winograd${tile}` }, tile),
      ),
    );
  if (!every || set === 'single') return [path('default', {})];
  // The direct convolution's tests force it: the Winograd path has its own cases.
  const conv: Partial<KernelVariant> = set === 'conv' ? { conv: 'direct' } : {};
  const portable = path('portable', { ...conv, subgroups: false, rowSharing: false });
  if (!sub) return [portable];
  if (set === 'conv') return [path('subgroups+rows', { ...conv, subgroups: true, rowSharing: true }), path('subgroups', { ...conv, subgroups: true, rowSharing: false }), portable];
  return [path('subgroups', { subgroups: true, rowSharing: true }), portable];
}
