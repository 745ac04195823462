/**
 * Winograd 3×3 convolution, stride 1, padding 1, F(m×m, 3×3) with m = 4 or 6 (α = m + 2), plain or routed: output
 * sample o = conv(x[table[o][0]], w[table[o][1]]) + bias, ReLU optional; and, with `gather`, the input gradient
 * (every output sample that read an input sample adds its transformed gradient to it).
 *
 * Three passes per band of tiles, so that the transformed tensors stay bounded (24 MB) and within one storage
 * binding, whatever the image size:
 *   1. input transform: each α×α input patch d (tiles overlap by 2) → V = Bᵀ d B, stored V[ξ/4][n][ci][tile][ξ%4];
 *   2. multiply: for each of the α² points ξ, a matrix product over input channels: M[o][co][ξ][tile] =
 *      Σ_ci V[ξ][src(o)][ci][tile] · U[e(o)][ξ][ci][co], with U = G g Gᵀ the transformed weights (winograd-weights.ts);
 *   3. output transform: Y = Aᵀ M A, + bias, ReLU, stored into the m×m output tile.
 * On lavapipe a vec4 store costs about 1.5 scalar stores, a vec4 load 4-5 scalar loads: V, U and M are laid out so
 * that they are written 4 values to a store and read one value to a load.
 * Input and output tensors larger than one binding are read and written in slabs (conv2d-slabs.ts): the input
 * transform reads each input slab's channels, the output transform writes each output slab.
 *
 * The multiply follows lavapipe's costs (../shared/docs/lavapipe-perf-notes.md): there every storage load with a
 * varying address is a loop over the 8 lanes, several times the cost of the multiply-add it feeds, so the blocking
 * minimises loads per multiply-add. Each invocation accumulates 4 tiles × 32 output channels (128 accumulators, as
 * many as compile quickly), the 8 lanes of a subgroup taking 32 different tiles and sharing the 32 weights of an
 * input channel: each lane loads 4 of them and subgroupShuffle (cheaper there than subgroupBroadcast) hands them on,
 * 8 loads per lane per 128 multiply-adds. The input-channel loop takes 2 channels per step (channels are padded with
 * zeros to an even count). Measured on lavapipe at 64→64, 160×120 (CPU time of the multiply): 8 tiles × 16
 * channels 49 ms, 4 × 32 with 4 channels per step 48 ms, with 2 per step 34 ms, with 1 per step 42 ms; 8 × 32
 * (256 accumulators) 35 ms but three times the compile time.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { ceilDiv, MAX_GRID, Program, program, type ProgramSpec } from './program.ts';
import { planSlabs } from './conv2d-slabs.ts';
import { linearMap, winogradMatrices } from './winograd-matrices.ts';

/** Invocations per workgroup of the multiply: one subgroup of 8 lanes on lavapipe. */
const LANES = 8;
/** Band tile counts are padded to a multiple of this (a multiple of every multiply block's tiles × LANES). */
export const TILE_PAD = 64;
/** Input channels per step of the multiply's loop: channels are padded with zeros to a multiple of it. */
const CI_STEP = 2;
/** Workgroup size of the transforms. */
const WG = 64;
/** Bytes each transformed band (V, M) may take (1 to 24 MB measured alike on lavapipe). */
const BAND_BYTES = 24 << 20;

export const roundUp = (n: number, k: number) => ceilDiv(n, k) * k;

/** Output channels and tiles per invocation of the multiply: 4 × 32, or 8 tiles × fewer channels for narrow outputs. */
export function multiplyBlock(co: number): { cb: number; tiles: number } {
  return co > 16 ? { cb: 32, tiles: 4 } : { cb: co > 8 ? 16 : co > 4 ? 8 : 4, tiles: 8 };
}

/** The channel counts of the transformed tensors: input channels padded to the multiply's step, output channels to its block. */
export function paddedChannels(ci: number, co: number): { ciP: number; coP: number } {
  return { ciP: roundUp(ci, CI_STEP), coP: roundUp(co, multiplyBlock(co).cb) };
}

const TILE_UNIFORMS = {
  H: 'u32', W: 'u32', tilesX: 'u32', t0: 'u32', tiles: 'u32', TP: 'u32',
  nLo: 'u32', cLo: 'u32', cHi: 'u32', xBase: 'u32', xSample: 'u32', nSrc: 'u32', ciP: 'u32',
} as const;

/**
 * Pass 1, one invocation per (tile, channel, sample) of a slab: the α×α transform of a patch of one channel, stored
 * V[ξ/4][n][ci][tile][ξ%4] (4 points per 16-byte store, which also compiles to a quarter of the per-lane branches);
 * channels past the last and tiles past the band are zeros. 'input': Bᵀ d B of the α×α input patch (tiles overlap by
 * 2, starting one pixel up-left of the output tile); 'gradient' (the weight gradient's F(3×3, m×m)): G g Gᵀ of the
 * m×m output-gradient tile.
 */
function tileTransformProgram(m: number, what: 'input' | 'gradient'): Program {
  return program(`conv2d_winograd${m}_${what}`, () => tileTransformProgramSpec(m, what));
}

function tileTransformProgramSpec(m: number, what: 'input' | 'gradient'): ProgramSpec {
  const { alpha: a, BT } = winogradMatrices(m);
  const C = what === 'input' ? BT : winogradMatrices(3, m).G;
  const size = C[0].length;
  const lines: string[] = [];
  for (let r = 0; r < size; r++)
    lines.push(`let ry${r} = iy0 + ${r}; let rok${r} = live && ry${r} >= 0 && ry${r} < i32(p.H); let ro${r} = u32(clamp(ry${r}, 0, i32(p.H) - 1)) * p.W;`);
  for (let c = 0; c < size; c++)
    lines.push(`let cx${c} = ix0 + ${c}; let cok${c} = cx${c} >= 0 && cx${c} < i32(p.W); let co${c} = u32(clamp(cx${c}, 0, i32(p.W) - 1));`);
  for (let r = 0; r < size; r++)
    lines.push(Array.from({ length: size }, (_, c) => `let d${r}_${c} = select(0.0, X[xc + ro${r} + co${c}], rok${r} && cok${c});`).join(' '));
  // T = C d (column by column), then V = T Cᵀ (row by row).
  for (let c = 0; c < size; c++) lines.push(...linearMap(C, (k) => `d${k}_${c}`, (i) => `t${i}_${c}`, `c${c}_`));
  for (let r = 0; r < a; r++) lines.push(...linearMap(C, (k) => `t${r}_${k}`, (j) => `v${r}_${j}`, `r${r}_`));
  const stores: string[] = [];
  const v = (xi: number) => `v${Math.floor(xi / a)}_${xi % a}`;
  for (let q = 0; q < (a * a) / 4; q++) stores.push(`V[vo + ${q}u * step] = vec4f(${[0, 1, 2, 3].map((k) => v(4 * q + k)).join(', ')});`);
  return {
    name: `conv2d_winograd${m}_${what}`,
    inputs: { X: 'f32' },
    outputs: { V: 'vec4f' },
    uniforms: TILE_UNIFORMS,
    workgroupSize: WG,
    body: /* wgsl */ `
  let t = gid.x;
  let ci = p.cLo + wid.y;
  let n = p.nLo + wid.z;
  if (t >= p.TP) { return; }
  let live = t < p.tiles && ci < p.cHi;
  let tg = p.t0 + min(t, p.tiles - 1u);
  let iy0 = i32((tg / p.tilesX) * ${m}u)${what === 'input' ? ' - 1' : ''};
  let ix0 = i32((tg % p.tilesX) * ${m}u)${what === 'input' ? ' - 1' : ''};
  let xc = p.xBase + (n - p.nLo) * p.xSample + (min(ci, p.cHi - 1u) - p.cLo) * p.H * p.W;
  ${lines.join('\n  ')}
  let step = p.nSrc * p.ciP * p.TP;
  let vo = (n * p.ciP + ci) * p.TP + t;
  ${stores.join(' ')}`,
  };
}

/** A band of tiles: tiles [t0, t0 + count) of the tile grid, stored padded to tp. */
export interface Band {
  t0: number;
  count: number;
  tp: number;
}

/** Transforms the tiles of one band of x (n, c, H, W), slab by slab, into V (α²/4, n, ciP, tp, 4); channels [c, ciP) are zeros. */
export function transformTiles(m: number, what: 'input' | 'gradient', x: Tensor, V: Tensor, band: Band, ciP: number): void {
  const [n, c, H, W] = x.shape;
  const prog = tileTransformProgram(m, what);
  for (const xs of planSlabs(x, n, c, H * W, `winograd ${what}`)) {
    // The slab holding the last channel also writes the channels up to ciP.
    const cEnd = xs.cHi === c ? ciP : xs.cHi;
    prog.dispatch(
      { X: xs.range, V },
      {
        H, W, tilesX: ceilDiv(W, m), t0: band.t0, tiles: band.count, TP: band.tp, nLo: xs.nLo, cLo: xs.cLo, cHi: xs.cHi,
        xBase: xs.base, xSample: c * H * W, nSrc: n, ciP,
      },
      [ceilDiv(band.tp, WG), cEnd - xs.cLo, xs.nHi - xs.nLo],
    );
  }
}

/** The bands of the tile grid of an H×W image: runs of tiles whose transformed tensors take at most BAND_BYTES and one binding. */
export function bands(m: number, H: number, W: number, bytesPerTile: number): { bands: Band[]; TP: number } {
  const tiles = ceilDiv(W, m) * ceilDiv(H, m);
  if (bytesPerTile * TILE_PAD > engine().rt.maxBinding) throw new LimitError('winograd: one block of transformed tiles exceeds one storage binding');
  const bandTiles = Math.max(TILE_PAD, Math.floor(Math.min(engine().rt.maxBinding, BAND_BYTES) / bytesPerTile / TILE_PAD) * TILE_PAD);
  const TP = Math.min(bandTiles, roundUp(tiles, TILE_PAD));
  const list: Band[] = [];
  for (let t0 = 0; t0 < tiles; t0 += TP) {
    const count = Math.min(TP, tiles - t0);
    list.push({ t0, count, tp: roundUp(count, TILE_PAD) });
  }
  return { bands: list, TP };
}

const MULTIPLY_UNIFORMS = {
  nv: 'u32', routed: 'u32', gather: 'u32', nSrc: 'u32', ciP: 'u32', coP: 'u32', TP: 'u32', coBlocks: 'u32', alpha2: 'u32',
} as const;

/**
 * Pass 2: workgroup (tile block, ξ, output sample × channel block); lane l owns the T consecutive tiles
 * block·8T + lT + j (j < T) and the CB output channels of the block. With `sub`, the CB weights of an input channel
 * are loaded CB/8 per lane and shared with subgroupShuffle; without, every lane loads them all.
 */
function multiplyProgram(cb: number, T: number, sub: boolean): Program {
  return program(`conv2d_winograd_multiply ${cb} ${T} ${sub}`, () => multiplyProgramSpec(cb, T, sub));
}

function multiplyProgramSpec(cb: number, T: number, sub: boolean): ProgramSpec {
  const Q = cb / 4;
  const perLane = Math.max(1, cb / LANES);
  const acc = (j: number, q: number) => `acc${j}_${q}`;
  const decl: string[] = [];
  for (let j = 0; j < T; j++) for (let q = 0; q < Q; q++) decl.push(`var ${acc(j, q)} = vec4f(0.0);`);
  // One step of CI_STEP input channels: loads, then each accumulator updated by one statement. lavapipe blends every
  // store to a variable inside a loop with the loop's mask (a load, a blend and a store): one store per
  // accumulator and step, not one per multiply-add, took the multiply from 5 instructions per multiply-add to 2.
  const steps: string[] = [];
  for (let k = 0; k < CI_STEP; k++) {
    steps.push(Array.from({ length: T }, (_, j) => `let x${k}_${j} = V[vr + ${k}u * tp4 + ${4 * j}u];`).join(' '));
    if (sub) {
      steps.push(Array.from({ length: perLane }, (_, i) => `let u${k}_${i} = U[ur + ${4 * k}u * p.coP + ${4 * i}u];`).join(' '));
      for (let q = 0; q < Q; q++) {
        const w = Array.from({ length: 4 }, (_, c) => `subgroupShuffle(u${k}_${(4 * q + c) % perLane}, ${Math.floor((4 * q + c) / perLane)}u)`);
        steps.push(`let w${k}_${q} = vec4f(${w.join(', ')});`);
      }
    } else {
      for (let q = 0; q < Q; q++) steps.push(`let w${k}_${q} = vec4f(${Array.from({ length: 4 }, (_, c) => `U[ur + ${4 * k}u * p.coP + ${4 * (4 * q + c)}u]`).join(', ')});`);
    }
  }
  for (let j = 0; j < T; j++)
    for (let q = 0; q < Q; q++)
      steps.push(`${acc(j, q)} = ${acc(j, q)}${Array.from({ length: CI_STEP }, (_, k) => ` + x${k}_${j} * w${k}_${q}`).join('')};`);
  // The lane's T consecutive tiles of one channel, 4 to a vec4 store.
  const stores: string[] = [];
  for (let q = 0; q < Q; q++)
    for (let c = 0; c < 4; c++)
      for (let j = 0; j < T; j += 4) stores.push(`M[mo + ${4 * q + c}u * cs + ${j / 4}u] = vec4f(${[0, 1, 2, 3].map((k) => `${acc(j + k, q)}.${'xyzw'[c]}`).join(', ')});`);
  return {
    name: 'conv2d_winograd_multiply',
    inputs: { V: 'f32', U: 'f32', T: 'u32' },
    outputs: { M: 'vec4f' },
    uniforms: MULTIPLY_UNIFORMS,
    workgroupSize: LANES,
    enables: sub ? ['subgroups'] : [],
    body: /* wgsl */ `
  let xi = wid.y;
  let cb = wid.z % p.coBlocks;
  let o = wid.z / p.coBlocks;
  let co0 = cb * ${cb}u;
  let tl = wid.x * ${T * LANES}u + lid.x * ${T}u;
  let tp4 = p.TP * 4u;
  ${decl.join(' ')}
  var vBeg = o;
  var vEnd = o + 1u;
  if (p.gather == 1u) { vBeg = 0u; vEnd = p.nv; }
  for (var v = vBeg; v < vEnd; v++) {
    var src = v;
    var e = 0u;
    if (p.routed == 1u) {
      e = T[2u * v + 1u];
      if (p.gather == 1u) {
        if (T[2u * v] != o) { continue; }
      } else {
        src = min(T[2u * v], p.nSrc - 1u);
      }
    } else if (v != o) {
      continue;
    }
    let vb = ((((xi >> 2u) * p.nSrc + src) * p.ciP) * p.TP + tl) * 4u + (xi & 3u);
    // U[e][ξ/4][ci][co][ξ%4] (winograd-weights.ts).
    let ub = (((e * p.alpha2 / 4u + (xi >> 2u)) * p.ciP * p.coP + co0${sub ? ` + (sid * ${perLane}u) % ${cb}u` : ''}) * 4u) + (xi & 3u);
    for (var ci = 0u; ci < p.ciP; ci += ${CI_STEP}u) {
      let vr = vb + ci * tp4;
      let ur = ub + ci * p.coP * 4u;
      ${steps.join('\n      ')}
    }
  }
  let cs = p.alpha2 * p.TP / 4u;
  let mo = (((o * p.coP + co0) * p.alpha2 + xi) * p.TP + tl) / 4u;
  ${stores.join(' ')}`,
  };
}

const OUTPUT_UNIFORMS = {
  H: 'u32', W: 'u32', tilesX: 'u32', t0: 'u32', tiles: 'u32', TP: 'u32', coP: 'u32',
  nLo: 'u32', cLo: 'u32', cHi: 'u32', oBase: 'u32', oSample: 'u32',
  routed: 'u32', addBias: 'u32', bE: 'u32', relu: 'u32',
} as const;

/** Pass 3: one invocation per (tile, channel, sample) of an output slab: Y = Aᵀ M A + bias, ReLU, inside the image. */
function outputTransformProgram(m: number): Program {
  return program(`conv2d_winograd${m}_output`, () => outputTransformProgramSpec(m));
}

function outputTransformProgramSpec(m: number): ProgramSpec {
  const { alpha: a, AT } = winogradMatrices(m);
  const lines: string[] = [];
  for (let r = 0; r < a; r++) lines.push(Array.from({ length: a }, (_, c) => `let m${r}_${c} = M[mb + ${r * a + c}u * p.TP];`).join(' '));
  // S = Aᵀ M (column by column), then Y = S A (row by row).
  for (let c = 0; c < a; c++) lines.push(...linearMap(AT, (k) => `m${k}_${c}`, (i) => `s${i}_${c}`, `c${c}_`));
  for (let r = 0; r < m; r++) lines.push(...linearMap(AT, (k) => `s${r}_${k}`, (j) => `y${r}_${j}`, `r${r}_`));
  const stores: string[] = [];
  for (let r = 0; r < m; r++)
    for (let c = 0; c < m; c++) stores.push(`if (oy + ${r}u < p.H && ox + ${c}u < p.W) { store(ob + ${r}u * p.W + ${c}u, y${r}_${c} + bias); }`);
  return {
    name: `conv2d_winograd${m}_output`,
    inputs: { M: 'f32', Bias: 'f32', T: 'u32' },
    outputs: { O: 'f32' },
    uniforms: OUTPUT_UNIFORMS,
    workgroupSize: WG,
    header: /* wgsl */ `fn store(idx: u32, value: f32) {
  var r = value;
  if (p.relu == 1u) { r = max(r, 0.0); }
  O[idx] = r;
}`,
    body: /* wgsl */ `
  let t = gid.x;
  let co = p.cLo + wid.y;
  let o = p.nLo + wid.z;
  if (t >= p.tiles || co >= p.cHi) { return; }
  let tg = p.t0 + t;
  let oy = (tg / p.tilesX) * ${m}u;
  let ox = (tg % p.tilesX) * ${m}u;
  var bias = 0.0;
  if (p.addBias == 1u) {
    var e = 0u;
    if (p.routed == 1u) { e = T[2u * o + 1u]; }
    bias = Bias[e * p.bE + co];
  }
  let mb = ((o * p.coP + co) * ${a * a}u) * p.TP + t;
  ${lines.join('\n  ')}
  let ob = p.oBase + (o - p.nLo) * p.oSample + (co - p.cLo) * p.H * p.W + oy * p.W + ox;
  ${stores.join('\n  ')}`,
  };
}

export interface WinogradArgs {
  m: number;
  /** (nSrc, Cx, H, W): the input (forward) or the output gradient (input gradient). */
  x: Tensor;
  /** Transformed weights (E, α²/4, ciP, coP, 4) from winograd-weights.ts, with ciP and coP from paddedChannels. */
  u: Tensor;
  /** (E, Co) or null. */
  bias: Tensor | null;
  /** (nv, 2) u32 [input sample, expert] per output sample of the forward, or null (identity, E = 1). */
  table: Tensor | null;
  relu: boolean;
  /** Input gradient: output sample n sums the table's samples v with table[v][0] = n. */
  gather: boolean;
  /** Output samples: nv (forward), input samples (gather). */
  nOut: number;
  /** Output channels. */
  co: number;
  /** Table rows (forward: = nOut). */
  nv: number;
  /** Use the subgroup multiply (subgroups of at least 8 lanes). */
  sub: boolean;
}

/** Bytes per tile of the larger transformed tensor of a band: V (all source samples) or M (all output samples). */
function bytesPerTile(m: number, nSrc: number, cx: number, nOut: number, co: number): number {
  const { alpha } = winogradMatrices(m);
  const { ciP, coP } = paddedChannels(cx, co);
  return 4 * alpha * alpha * Math.max(nSrc * ciP, nOut * coP);
}

/** Whether a Winograd convolution of this size fits the bindings (a band of one tile block), else the direct kernel must run. */
export function winogradFits(m: number, nSrc: number, cx: number, nOut: number, co: number): boolean {
  return bytesPerTile(m, nSrc, cx, nOut, co) * TILE_PAD <= engine().rt.maxBinding;
}

/** Runs the three passes band by band; returns the output (nOut, co, H, W). */
export function winogradConv(a: WinogradArgs): Tensor {
  const rt = engine().rt;
  const { m } = a;
  const { alpha } = winogradMatrices(m);
  const a2 = alpha * alpha;
  const [nSrc, cx, H, W] = a.x.shape;
  const out = Tensor.empty([a.nOut, a.co, H, W]);
  if (out.size === 0) return out;
  const { cb, tiles: T } = multiplyBlock(a.co);
  const { ciP, coP } = paddedChannels(cx, a.co);
  const coBlocks = coP / cb;
  if (a.u.size !== a.u.shape[0] * a2 * ciP * coP) throw new Error(`winograd: transformed weights [${a.u.shape}] do not match ${ciP}×${coP}`);
  if (a.u.bytes > rt.maxBinding) throw new LimitError('winograd: the transformed weights exceed one storage binding');
  const z = a.nOut * coBlocks;
  if (z > MAX_GRID || ciP > MAX_GRID) throw new LimitError(`winograd: ${z} output blocks exceed one grid dimension`);
  const { bands: list, TP } = bands(m, H, W, bytesPerTile(m, nSrc, cx, a.nOut, a.co));
  const V = Tensor.empty([a2 * nSrc * ciP * TP]);
  const M = Tensor.empty([a.nOut * coP * a2 * TP]);
  const oSlabs = planSlabs(out, a.nOut, a.co, H * W, 'winograd output');
  const outProg = outputTransformProgram(m);
  const mulProg = multiplyProgram(cb, T, a.sub);
  const unused = a.u;
  for (const band of list) {
    transformTiles(m, 'input', a.x, V, band, ciP);
    mulProg.dispatch(
      { V, U: a.u, T: a.table ?? unused, M },
      { nv: a.nv, routed: a.table ? 1 : 0, gather: a.gather ? 1 : 0, nSrc, ciP, coP, TP: band.tp, coBlocks, alpha2: a2 },
      [band.tp / (T * LANES), a2, z],
    );
    for (const os of oSlabs)
      outProg.dispatch(
        { M, Bias: a.bias ?? unused, T: a.table ?? unused, O: os.range },
        {
          H, W, tilesX: ceilDiv(W, m), t0: band.t0, tiles: band.count, TP: band.tp, coP, nLo: os.nLo, cLo: os.cLo, cHi: os.cHi,
          oBase: os.base, oSample: a.co * H * W, routed: a.table ? 1 : 0, addBias: a.bias ? 1 : 0, bE: a.co, relu: a.relu ? 1 : 0,
        },
        [ceilDiv(band.count, WG), os.cHi - os.cLo, os.nHi - os.nLo],
      );
  }
  V.dispose();
  M.dispose();
  return out;
}
