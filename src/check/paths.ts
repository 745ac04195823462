/**
 * The kernel paths a test case runs under, and the one loop over them that the Node tests, the browser page and
 * `moefusion selftest` share: the subgroup kernels and the portable ones, the direct convolution with and without
 * input rows shared between lanes, and the Winograd convolution forced at each tile size.
 */
import { setSubgroupsAllowed, subgroupSize } from '../kernels/subgroups.ts';
import { setConvRowSharing } from '../kernels/conv2d.ts';
import { setConvAlgorithm, type ConvChoice } from '../kernels/conv2d-choice.ts';

/**
 * Which paths a kernel has: 'single' (one, no switch), 'subgroups' (subgroup kernels, portable kernels), 'conv'
 * (the direct convolution: subgroups with shared rows, subgroups, portable) and 'winograd' (Winograd forced,
 * F(4×4) and F(6×6), each with the subgroup multiply and the portable one).
 */
export type PathSet = 'single' | 'subgroups' | 'conv' | 'winograd';

export interface KernelPath {
  /** For messages: 'default', 'subgroups+rows', 'subgroups', 'portable', 'F(4×4) subgroups' … */
  name: string;
  subgroups: boolean;
  rows: boolean;
  /** The convolution algorithm forced, or null: the engine's choice, left as it is (MOEFUSION_CONV included). */
  algorithm: ConvChoice | null;
  /** The Winograd tile size when forced, else null. */
  tile: 4 | 6 | null;
}

const DEFAULT: KernelPath = { name: 'default', subgroups: true, rows: true, algorithm: null, tile: null };

/**
 * The paths of `set` this adapter has (a subgroup path only where the engine uses subgroups). `every` false: only
 * what the engine itself would run (selftest), i.e. the default switches, with Winograd still forced per tile size.
 */
export function kernelPaths(set: PathSet, every = true): KernelPath[] {
  const sub = subgroupSize() > 0;
  if (set === 'winograd')
    return [4, 6].flatMap((tile) =>
      (every && sub ? [true, false] : [sub]).map((subgroups): KernelPath => ({
        name: `F(${tile}×${tile})${every ? (subgroups ? ' subgroups' : ' portable') : ''}`,
        subgroups,
        rows: true,
        algorithm: tile === 4 ? 'winograd4' : 'winograd6',
        tile: tile as 4 | 6,
      })),
    );
  if (!every || set === 'single') return [DEFAULT];
  const portable: KernelPath = { ...DEFAULT, name: 'portable', subgroups: false, rows: false };
  // The direct convolution's tests force it: the Winograd path has its own cases.
  const conv = (p: KernelPath): KernelPath => (set === 'conv' ? { ...p, algorithm: 'direct' } : p);
  const paths = !sub ? [portable] : set === 'conv' ? [{ ...DEFAULT, name: 'subgroups+rows' }, { ...DEFAULT, name: 'subgroups', rows: false }, portable] : [{ ...DEFAULT, name: 'subgroups' }, portable];
  return paths.map(conv);
}

/** Runs body once per path of `set` (see kernelPaths), with the engine's switches set; restores them afterwards. */
export async function forEachKernelPath(set: PathSet, body: (path: KernelPath) => Promise<void>, every = true): Promise<void> {
  const paths = kernelPaths(set, every);
  try {
    for (const path of paths) {
      setSubgroupsAllowed(path.subgroups);
      setConvRowSharing(path.rows);
      if (path.algorithm) setConvAlgorithm(path.algorithm);
      await body(path);
    }
  } finally {
    setSubgroupsAllowed(true);
    setConvRowSharing(true);
    if (paths.some((p) => p.algorithm)) setConvAlgorithm('auto');
  }
}
