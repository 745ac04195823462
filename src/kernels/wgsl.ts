/** Helpers shared by the kernels: 1-D grids larger than one grid dimension. */

export const MAX_GRID = 65535;

/** Workgroup counts covering `count` workgroups in a 2-D grid (x ≤ 65535). */
export function grid1d(count: number): [number, number, number] {
  if (count <= MAX_GRID) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_GRID);
  return [Math.ceil(count / y), y, 1];
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}
