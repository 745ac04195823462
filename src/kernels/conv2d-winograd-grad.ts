/**
 * Weight and bias gradients of the 3×3, padding-1 (routed) convolution in Winograd form, F(3×3, m×m) (α = m + 2):
 * each m×m tile of the output gradient g and the α×α input patch d under it give the tile's share of the 3×3 weight
 * gradient as Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A, and the sum over tiles and samples moves inside:
 *   M[e][ξ][co][ci] = Σ_{v routed to e} Σ_tiles Gt[ξ][v][co][tile] · V[ξ][input(v)][ci][tile],
 *   dW[e][co][ci] = Aᵀ M[e][·][co][ci] A.
 * Per band of tiles (conv2d-winograd.ts): the input transform of x (the forward's, Bᵀ d B), the transform of the
 * output gradient's tiles (G g Gᵀ), and a multiply that reduces over the band's tiles into M (added to the bands
 * before); then one output transform. The bias gradient comes from the transformed output gradient too: at the
 * point ξ = (1, 1) a tile's G g Gᵀ is its sum Σ g divided by f₁², G's Lagrange denominator of the point 1.
 *
 * The multiply mirrors the forward's on lavapipe: each invocation accumulates 4 consecutive input × 32 output
 * channels (128 accumulators) over 2 tiles per step; a subgroup's 8 lanes take 32 input channels and share the 32
 * output channels' gradient values through subgroupShuffle.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { MAX_GRID, Program, program, type ProgramSpec } from './program.ts';
import { bands, roundUp, TILE_PAD, transformTiles } from './conv2d-winograd.ts';
import { linearMap, winogradMatrices } from './winograd-matrices.ts';

const LANES = 8;
/** Input channels per lane and output channels per invocation. */
const CI_PER_LANE = 4;
const CO_BLOCK = 32;
const CI_BLOCK = CI_PER_LANE * LANES;
/** Tiles per step of the multiply's loop (band tile counts are multiples of 64). */
const T_STEP = 2;

const MULTIPLY_UNIFORMS = {
  nv: 'u32', routed: 'u32', nSrc: 'u32', ciP: 'u32', coP: 'u32', TP: 'u32', coBlocks: 'u32', alpha2: 'u32',
} as const;

function multiplyProgram(sub: boolean): Program {
  return program(`conv2d_winograd_weight_multiply ${sub}`, () => multiplyProgramSpec(sub));
}

function multiplyProgramSpec(sub: boolean): ProgramSpec {
  const J = CI_PER_LANE;
  const Q = CO_BLOCK / 4;
  const perLane = CO_BLOCK / LANES;
  const acc = (j: number, q: number) => `acc${j}_${q}`;
  const decl: string[] = [];
  for (let j = 0; j < J; j++) for (let q = 0; q < Q; q++) decl.push(`var ${acc(j, q)} = vec4f(0.0);`);
  const steps: string[] = [];
  for (let k = 0; k < T_STEP; k++) {
    steps.push(Array.from({ length: J }, (_, j) => `let x${k}_${j} = V[vr + ${j}u * tp4 + ${4 * k}u];`).join(' '));
    if (sub) {
      steps.push(Array.from({ length: perLane }, (_, i) => `let u${k}_${i} = G[gr + ${i}u * tp4 + ${4 * k}u];`).join(' '));
      for (let q = 0; q < Q; q++) {
        const w = Array.from({ length: 4 }, (_, c) => `subgroupShuffle(u${k}_${(4 * q + c) % perLane}, ${Math.floor((4 * q + c) / perLane)}u)`);
        steps.push(`let w${k}_${q} = vec4f(${w.join(', ')});`);
      }
    } else {
      for (let q = 0; q < Q; q++) steps.push(`let w${k}_${q} = vec4f(${Array.from({ length: 4 }, (_, c) => `G[gr + ${4 * q + c}u * tp4 + ${4 * k}u]`).join(', ')});`);
    }
  }
  // One statement per accumulator and step (see conv2d-winograd.ts: lavapipe blends every store to a variable).
  for (let j = 0; j < J; j++)
    for (let q = 0; q < Q; q++) steps.push(`${acc(j, q)} = ${acc(j, q)}${Array.from({ length: T_STEP }, (_, k) => ` + x${k}_${j} * w${k}_${q}`).join('')};`);
  // The lane's 4 consecutive input channels of one output channel in one vec4 store.
  const stores: string[] = [];
  for (let q = 0; q < Q; q++)
    for (let c = 0; c < 4; c++) stores.push(`M[mo + ${4 * q + c}u * (p.ciP / 4u)] = vec4f(${Array.from({ length: J }, (_, j) => `${acc(j, q)}.${'xyzw'[c]}`).join(', ')});`);
  return {
    name: 'conv2d_winograd_weight_multiply',
    inputs: { V: 'f32', G: 'f32', T: 'u32' },
    outputs: { M: 'vec4f' },
    uniforms: MULTIPLY_UNIFORMS,
    workgroupSize: LANES,
    enables: sub ? ['subgroups'] : [],
    body: /* wgsl */ `
  let xi = wid.y;
  let cb = wid.z % p.coBlocks;
  let e = wid.z / p.coBlocks;
  let co0 = cb * ${CO_BLOCK}u;
  let ci = wid.x * ${CI_BLOCK}u + lid.x * ${J}u;
  let tp4 = p.TP * 4u;
  ${decl.join(' ')}
  for (var v = 0u; v < p.nv; v++) {
    var src = v;
    if (p.routed == 1u) {
      if (T[2u * v + 1u] != e) { continue; }
      src = min(T[2u * v], p.nSrc - 1u);
    } else if (e != 0u) {
      continue;
    }
    // V[ξ/4][n][c][tile][ξ%4], Gt alike (conv2d-winograd.ts).
    let vb = (((xi >> 2u) * p.nSrc + src) * p.ciP + ci) * tp4 + (xi & 3u);
    let gb = (((xi >> 2u) * p.nv + v) * p.coP + co0${sub ? ` + (sid % ${LANES}u) * ${perLane}u` : ''}) * tp4 + (xi & 3u);
    for (var t = 0u; t < p.TP; t += ${T_STEP}u) {
      let vr = vb + 4u * t;
      let gr = gb + 4u * t;
      ${steps.join('\n      ')}
    }
  }
  let mo = (((e * p.alpha2 + xi) * p.coP + co0) * p.ciP + ci) / 4u;
  ${stores.join(' ')}`,
  };
}

/** The output transform: dW = Aᵀ M A per (expert, output channel, input channel). */
function outputProgram(m: number): Program {
  return program(`conv2d_winograd${m}_weight_output`, () => outputProgramSpec(m));
}

function outputProgramSpec(m: number): ProgramSpec {
  const { alpha: a, AT } = winogradMatrices(3, m);
  const lines: string[] = [];
  for (let r = 0; r < a; r++) lines.push(Array.from({ length: a }, (_, c) => `let m${r}_${c} = M[mb + ${r * a + c}u * plane];`).join(' '));
  for (let c = 0; c < a; c++) lines.push(...linearMap(AT, (k) => `m${k}_${c}`, (i) => `s${i}_${c}`, `c${c}_`));
  for (let r = 0; r < 3; r++) lines.push(...linearMap(AT, (k) => `s${r}_${k}`, (j) => `y${r}_${j}`, `r${r}_`));
  return {
    name: `conv2d_winograd${m}_weight_output`,
    inputs: { M: 'f32' },
    outputs: { DW: 'f32' },
    uniforms: { n: 'u32', co: 'u32', ci: 'u32', coP: 'u32', ciP: 'u32' },
    workgroupSize: 64,
    flat: true,
    body: /* wgsl */ `
  if (i >= p.n) { return; }
  let ci = i % p.ci;
  let co = (i / p.ci) % p.co;
  let e = i / (p.ci * p.co);
  let plane = p.coP * p.ciP;
  let mb = (e * ${a * a}u * p.coP + co) * p.ciP + ci;
  ${lines.join('\n  ')}
  let o = i * 9u;
  ${Array.from({ length: 9 }, (_, k) => `DW[o + ${k}u] = y${Math.floor(k / 3)}_${k % 3};`).join(' ')}`,
  };
}

/**
 * The bias gradient of one band: DB[e][co] (+)= f₁² Σ_{v routed to e} Σ_tiles Gt[ξ₁₁][v][co][tile], one invocation
 * per (expert, output channel).
 */
function biasProgram(m: number): Program {
  return program(`conv2d_winograd${m}_bias_grad`, () => biasProgramSpec(m));
}

function biasProgramSpec(m: number): ProgramSpec {
  const { alpha: a, G } = winogradMatrices(3, m);
  // Row 1 of G is the point 1: (1, …, 1) / f₁.
  const scale = 1 / G[1][0] ** 2;
  return {
    name: `conv2d_winograd${m}_bias_grad`,
    inputs: { Gt: 'f32', T: 'u32' },
    outputs: { DB: 'f32' },
    uniforms: { n: 'u32', co: 'u32', coP: 'u32', nv: 'u32', TP: 'u32', routed: 'u32', accumulate: 'u32' },
    workgroupSize: 64,
    flat: true,
    body: /* wgsl */ `
  if (i >= p.n) { return; }
  let co = i % p.co;
  let e = i / p.co;
  var s = 0.0;
  for (var v = 0u; v < p.nv; v++) {
    if ((p.routed == 1u && T[2u * v + 1u] != e) || (p.routed == 0u && e != 0u)) { continue; }
    let gb = ((${(a + 1) >> 2}u * p.nv + v) * p.coP + co) * p.TP * 4u + ${(a + 1) & 3}u;
    for (var t = 0u; t < p.TP; t++) { s += Gt[gb + 4u * t]; }
  }
  DB[i] = select(0.0, DB[i], p.accumulate == 1u) + ${scale} * s;`,
  };
}

const addProgram = new Program({
  name: 'conv2d_winograd_weight_add',
  inputs: { B: 'vec4f' },
  outputs: { A: 'vec4f' },
  uniforms: { n: 'u32' },
  workgroupSize: 256,
  flat: true,
  body: 'if (i < p.n) { A[i] = A[i] + B[i]; }',
});

/** a += b (sizes multiples of 4: coP and ciP are multiples of 32). */
function addInPlace(a: Tensor, b: Tensor): void {
  addProgram.dispatchFlat(a.size / 4, { B: b, A: a }, { n: a.size / 4 });
}

/** Bytes per tile of the larger transformed tensor of a band: V (input samples) or Gt (output samples). */
function bytesPerTile(m: number, nIn: number, cin: number, nv: number, cout: number): number {
  const a = m + 2;
  return 4 * a * a * Math.max(nIn * roundUp(cin, CI_BLOCK), nv * roundUp(cout, CO_BLOCK));
}

/** Whether the weight gradient of this size fits the bindings in Winograd form (else the direct kernel runs). */
export function winogradWeightGradFits(m: number, nIn: number, cin: number, nv: number, cout: number, E: number): boolean {
  const a2 = (m + 2) ** 2;
  const sums = 4 * E * a2 * roundUp(cout, CO_BLOCK) * roundUp(cin, CI_BLOCK);
  const limit = engine().rt.maxBinding;
  return bytesPerTile(m, nIn, cin, nv, cout) * TILE_PAD <= limit && sums <= limit;
}

/**
 * Weight and bias gradients. x: (Nin, Cin, H, W) forward input; gy: (Nv, Cout, H, W) output gradient (masked by the
 * ReLU); table as in conv2dKernel (null: identity, E = 1). Returns dw (E, Cout, Cin, 3, 3) and db (E, Cout).
 */
export function winogradWeightGrad(x: Tensor, gy: Tensor, table: Tensor | null, E: number, m: number, sub: boolean): { dw: Tensor; db: Tensor } {
  const [nIn, cin, H, W] = x.shape;
  const [nv, cout] = gy.shape;
  const a2 = (m + 2) ** 2;
  const ciP = roundUp(cin, CI_BLOCK);
  const coP = roundUp(cout, CO_BLOCK);
  const coBlocks = coP / CO_BLOCK;
  if (E * coBlocks > MAX_GRID) throw new LimitError(`winograd weight gradient: ${E * coBlocks} output blocks exceed one grid dimension`);
  const { bands: list, TP } = bands(m, H, W, bytesPerTile(m, nIn, cin, nv, cout));
  const V = Tensor.empty([a2 * nIn * ciP * TP]);
  const Gt = Tensor.empty([a2 * nv * coP * TP]);
  const M = Tensor.empty([E * a2 * coP * ciP]);
  const db = Tensor.empty([E, cout]);
  const mul = multiplyProgram(sub);
  const bias = biasProgram(m);
  // Bands after the first write their sums into Mb, added to M by a flat kernel: reading M back in the multiply's
  // own stores made lavapipe compile it for 23 s instead of 5.
  const Mb = list.length > 1 ? Tensor.empty([E * a2 * coP * ciP]) : null;
  list.forEach((band, k) => {
    transformTiles(m, 'input', x, V, band, ciP);
    transformTiles(m, 'gradient', gy, Gt, band, coP);
    const sums = k > 0 ? Mb! : M;
    mul.dispatch(
      { V, G: Gt, T: table ?? V, M: sums },
      { nv, routed: table ? 1 : 0, nSrc: nIn, ciP, coP, TP: band.tp, coBlocks, alpha2: a2 },
      [ciP / CI_BLOCK, a2, E * coBlocks],
    );
    if (k > 0) addInPlace(M, Mb!);
    bias.dispatchFlat(E * cout, { Gt, T: table ?? Gt, DB: db }, { n: E * cout, co: cout, coP, nv, TP: band.tp, routed: table ? 1 : 0, accumulate: k > 0 ? 1 : 0 });
  });
  V.dispose();
  Gt.dispose();
  Mb?.dispose();
  const dw = Tensor.empty([E, cout, cin, 3, 3]);
  const n = E * cout * cin;
  outputProgram(m).dispatchFlat(n, { M, DW: dw }, { n, co: cout, ci: cin, coP, ciP });
  M.dispose();
  return { dw, db };
}

