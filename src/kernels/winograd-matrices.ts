/**
 * The Winograd (Toom-Cook) transforms of F(m, r): m outputs of a correlation with r taps from α = m + r − 1 inputs,
 * in 2-D as Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. The convolution is F(m×m, 3×3) (m = 4 or 6, α = m + 2); its weight
 * gradient is F(3×3, m×m), the same α: a 3×3 result from an α×α input patch and the m×m output gradient tile.
 * Built in float64 from α − 1 finite interpolation points and the point at infinity:
 *   Aᵀ[i][j] = p_j^i (evaluation; the ∞ column picks the leading coefficient),
 *   G[j][k] = p_j^k / f_j with f_j = Π_{l≠j} (p_j − p_l) (the ∞ row picks g's last tap),
 *   Bᵀ row j = the coefficients of Π_{l≠j} (x − p_l) (row ∞: of Π_l (x − p_l)).
 * A correlation is the transpose of a polynomial product, so interpolation (Bᵀ) acts on the data and evaluation
 * (Aᵀ) on the product; the Lagrange denominators f_j sit in G. Bᵀ depends only on the points, so the forward and
 * the weight gradient share the input transform.
 */

export interface WinogradMatrices {
  /** Outputs m and taps r per dimension. */
  m: number;
  r: number;
  /** Inputs per dimension: α = m + r − 1. */
  alpha: number;
  /** m × α. */
  AT: number[][];
  /** α × r. */
  G: number[][];
  /** α × α. */
  BT: number[][];
}

/** The points of each input tile size α: the usual choices, small magnitudes first (float32 error grows with them). */
const POINTS: Record<number, number[]> = {
  4: [0, 1, -1],
  6: [0, 1, -1, 2, -2],
  8: [0, 1, -1, 2, -2, 0.5, -0.5],
};

/** The output tile sides of F(m×m, 3×3) that have points: 2, 4, 6. */
export const WINOGRAD_TILES = [2, 4, 6] as const;

const cache = new Map<string, WinogradMatrices>();

export function winogradMatrices(m: number, r = 3): WinogradMatrices {
  const key = `${m} ${r}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const alpha = m + r - 1;
  const p = POINTS[alpha];
  if (!p) throw new Error(`winograd: no points for F(${m}, ${r})`);
  const AT = Array.from({ length: m }, (_, i) => [...p.map((x) => x ** i), i === m - 1 ? 1 : 0]);
  const f = p.map((x, j) => p.reduce((acc, y, l) => (l === j ? acc : acc * (x - y)), 1));
  const G = [...p.map((x, j) => Array.from({ length: r }, (_, k) => x ** k / f[j])), Array.from({ length: r }, (_, k) => (k === r - 1 ? 1 : 0))];
  const BT = [...p.map((_, j) => polyFromRoots(p.filter((__, l) => l !== j), alpha)), polyFromRoots(p, alpha)];
  const out = { m, r, alpha, AT, G, BT };
  cache.set(key, out);
  return out;
}

/** Coefficients (lowest power first, padded to `length`) of Π (x − root). */
function polyFromRoots(roots: number[], length: number): number[] {
  let c = [1];
  for (const root of roots) {
    const next = new Array<number>(c.length + 1).fill(0);
    c.forEach((v, k) => {
      next[k + 1] += v;
      next[k] -= root * v;
    });
    c = next;
  }
  return [...c, ...new Array<number>(length - c.length).fill(0)];
}

/**
 * WGSL statements computing out_r = Σ_k C[r][k] · in_k for a constant matrix C (rows r), skipping zero terms, with
 * the shortcuts the symmetric points ±p allow:
 * - rows that are mirror images under x → −x (row j = s·(−1)^k·row i: Bᵀ's rows of ±p) share their even and odd
 *   partial sums, e ± o;
 * - columns that are mirror images (column j = t·(−1)^r·column i: Aᵀ's columns of ±p) are first combined into
 *   in_i ± t·in_j, which the even and the odd rows then use.
 */
export function linearMap(C: number[][], input: (k: number) => string, output: (r: number) => string, tmp: string): string[] {
  const lines: string[] = [];
  // Terms of each row as [coefficient, value] after pairing mirrored columns.
  const cols = C[0].length;
  const paired = new Map<number, { partner: number; t: number }>();
  for (let i = 0; i < cols; i++)
    for (let j = i + 1; j < cols; j++) {
      if (paired.has(i) || paired.has(j)) continue;
      const t = mirrorSign(C.map((row) => row[i]), C.map((row) => row[j]));
      if (t === 0) continue;
      paired.set(i, { partner: j, t });
      paired.set(j, { partner: i, t: 0 });
      const op = t === 1 ? ['+', '-'] : ['-', '+'];
      lines.push(`let ${tmp}p${i} = ${input(i)} ${op[0]} ${input(j)}; let ${tmp}m${i} = ${input(i)} ${op[1]} ${input(j)};`);
    }
  const term = (c: number, v: string) => (c === 1 ? `+ ${v}` : c === -1 ? `- ${v}` : `${c < 0 ? '-' : '+'} ${literal(Math.abs(c))} * ${v}`);
  /** Σ of row r's terms over the columns `keep` accepts. */
  const sum = (r: number, keep: (k: number) => boolean) => {
    const s = C[r]
      .map((c, k) => {
        const pair = paired.get(k);
        if (c === 0 || !keep(k) || pair?.t === 0) return '';
        return term(c, pair ? `${tmp}${r % 2 === 0 ? 'p' : 'm'}${k}` : input(k));
      })
      .filter(Boolean)
      .join(' ');
    if (!s) return '0.0';
    return s.startsWith('+ ') ? s.slice(2) : `-${s.slice(2)}`;
  };
  const done = new Set<number>();
  C.forEach((row, i) => {
    if (done.has(i)) return;
    done.add(i);
    const j = paired.size ? -1 : C.findIndex((other, jj) => jj > i && !done.has(jj) && mirrorSign(row, other) !== 0);
    if (j < 0) {
      lines.push(`let ${output(i)} = ${sum(i, () => true)};`);
      return;
    }
    done.add(j);
    const e = `${tmp}e${i}`;
    const o = `${tmp}o${i}`;
    lines.push(`let ${e} = ${sum(i, (k) => k % 2 === 0)}; let ${o} = ${sum(i, (k) => k % 2 === 1)};`);
    lines.push(`let ${output(i)} = ${e} + ${o}; let ${output(j)} = ${mirrorSign(row, C[j]) === 1 ? `${e} - ${o}` : `${o} - ${e}`};`);
  });
  return lines;
}

/** s when b[k] = s·(−1)^k·a[k] for every k (s = ±1) and a has odd and even terms, else 0. */
function mirrorSign(a: number[], b: number[]): number {
  const hasOdd = a.some((v, k) => k % 2 === 1 && v !== 0);
  const hasEven = a.some((v, k) => k % 2 === 0 && v !== 0);
  if (!hasOdd || !hasEven) return 0;
  for (const s of [1, -1]) if (a.every((v, k) => b[k] === s * (k % 2 ? -v : v))) return s;
  return 0;
}

/** A WGSL f32 literal that round-trips the float64 value as closely as f32 allows. */
export function literal(v: number): string {
  const s = String(Math.fround(v));
  return /[.e]/.test(s) ? s : `${s}.0`;
}
