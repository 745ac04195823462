/**
 * Weight and bias gradients of the (routed) convolution: for expert e,
 *   dW[e][co][ci][ky][kx] = Σ_{v routed to e} Σ_{y,x} gy[v][co][y][x] · x[input(v)][ci][y+ky−pad][x+kx−pad],
 *   db[e][co] = Σ_{v routed to e} Σ_{y,x} gy[v][co][y][x].
 * Each invocation owns COB output channels × one input channel × all K² taps over one band of rows (a "part"),
 * sliding a K×K window of the input along each row so that every input value is loaded once per row; the
 * per-part sums are reduced by a second pass. Experts that no sample was routed to get zeros. 3×3, padding-1
 * convolutions may take the Winograd form instead (conv2d-winograd-grad.ts), as conv2d-choice.ts decides.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { sumKernel } from './reduce.ts';
import { ceilDiv, flatGrid, Program, type ProgramSpec, type UniformType, program } from './program.ts';
import { planSlabs } from './conv2d-slabs.ts';
import { convAlgorithm, engineVariant, subgroupSize } from './variant.ts';
import { winogradWeightGrad, winogradWeightGradFits } from './conv2d-winograd-grad.ts';

const COB = 4;
const WG = 64;
/** Invocations to aim for when choosing how many row bands to split the reduction into. */
const TARGET_INVOCATIONS = 8192;

const GRAD_UNIFORMS: Record<string, UniformType> = {
  Hin: 'u32', Win: 'u32', Hout: 'u32', Wout: 'u32',
  Cin: 'u32', Cout: 'u32', E: 'u32', pad: 'i32',
  nv: 'u32', routed: 'u32', parts: 'u32', rowsPerPart: 'u32',
  srcLo: 'u32', srcHi: 'u32', xBase: 'u32', xSample: 'u32',
  ciLo: 'u32', ciHi: 'u32', vLo: 'u32', vHi: 'u32',
  gBase: 'u32', gSample: 'u32', coLo: 'u32', coHi: 'u32',
  accumulate: 'u32', coBlocks: 'u32', ciChunks: 'u32',
};

/**
 * Bindings, uniforms, the zero-padded input load and the routing lookup shared by the weight-gradient kernels.
 * With `v4` the input and the output gradient are bound as vec4s (and read whole, without `ld`).
 */
function gradSpec(v4: boolean): Pick<ProgramSpec, 'inputs' | 'outputs' | 'uniforms'> & { prelude: string } {
  return {
    inputs: { X: v4 ? 'vec4f' : 'f32', G: v4 ? 'vec4f' : 'f32', T: 'u32' },
    outputs: { PW: 'f32', PB: 'f32' },
    uniforms: GRAD_UNIFORMS,
    prelude: /* wgsl */ `${v4 ? '' : `
fn ld(row: u32, rowValid: bool, ix: i32) -> f32 {
  let v = X[row + u32(clamp(ix, 0, i32(p.Win) - 1))];
  return select(0.0, v, rowValid && ix >= 0 && ix < i32(p.Win));
}`}

/** The input sample output sample v reads when it uses expert e and that input lies in the bound slab, else -1. */
fn sourceOf(v: u32, e: u32) -> i32 {
  var src = v;
  if (p.routed == 1u) {
    if (T[2u * v + 1u] != e) { return -1; }
    src = T[2u * v];
  }
  if (src < p.srcLo || src >= p.srcHi) { return -1; }
  return i32(src);
}
`,
  };
}

function gradProgram(K: number): Program {
  return program(`conv2d_grad_weight ${K}`, () => gradProgramSpec(K));
}

function gradProgramSpec(K: number): ProgramSpec {
  const lines: string[] = [];
  const accDecl: string[] = [];
  for (let c = 0; c < COB; c++) for (let t = 0; t < K * K; t++) accDecl.push(`var a${c}_${t} = 0.0;`);
  const w = slidingWindow(K);
  const fma = Array.from({ length: COB }, (_, c) => w.fma(c)).join(' ');
  lines.push(`for (var y = y0; y < y1; y++) {
        ${w.rows}
        ${w.init}
        let gr = gs + y * p.Wout;
        for (var xx = 0u; xx < p.Wout; xx++) {
          ${w.shift}
          let g0 = gld(gr + xx, co0); let g1 = gld(gr + xx, co0 + 1u); let g2 = gld(gr + xx, co0 + 2u); let g3 = gld(gr + xx, co0 + 3u);
          b0 += g0; b1 += g1; b2 += g2; b3 += g3;
          ${fma}
        }
      }`);
  const { prelude, ...bindings } = gradSpec(false);
  return {
    name: 'conv2d_grad_weight',
    ...bindings,
    workgroupSize: WG,
    flat: true,
    header: /* wgsl */ `${prelude}
/** Output gradient of channel co at offset off of channel coLo's plane, 0 outside the bound channels. */
fn gld(off: u32, co: u32) -> f32 {
  let c = clamp(co, p.coLo, p.coHi - 1u) - p.coLo;
  return select(0.0, G[off + c * p.Hout * p.Wout], co >= p.coLo && co < p.coHi);
}

fn put(idx: u32, v: f32) {
  if (p.accumulate == 1u) { PW[idx] += v; } else { PW[idx] = v; }
}

fn putBias(idx: u32, v: f32) {
  if (p.accumulate == 1u) { PB[idx] += v; } else { PB[idx] = v; }
}`,
    body: /* wgsl */ `
  let pairs = p.E * p.coBlocks * p.Cin;
  if (i >= pairs * p.parts) { return; }
  let part = i / pairs;
  let r = i % pairs;
  let ci = r % p.Cin;
  let cb = (r / p.Cin) % p.coBlocks;
  let e = r / (p.Cin * p.coBlocks);
  let co0 = cb * ${COB}u;
  if (ci < p.ciLo || ci >= p.ciHi || co0 + ${COB}u <= p.coLo || co0 >= p.coHi) { return; }
  let y0 = part * p.rowsPerPart;
  let y1 = min(p.Hout, y0 + p.rowsPerPart);
  let plane = p.Hin * p.Win;
  ${accDecl.join(' ')}
  var b0 = 0.0; var b1 = 0.0; var b2 = 0.0; var b3 = 0.0;
  ${w.decl}
  for (var v = p.vLo; v < p.vHi; v++) {
    let found = sourceOf(v, e);
    if (found < 0) { continue; }
    let src = u32(found);
    let xc = (src - p.srcLo) * p.xSample + p.xBase + (ci - p.ciLo) * plane;
    let gs = (v - p.vLo) * p.gSample + p.gBase;
    ${lines.join('\n')}
  }
  ${weightWrites(COB, K * K)}`,
  };
}

/**
 * Subgroup variant (subgroups of ≥ 8 lanes): a workgroup of one subgroup (8 invocations on lavapipe) owns one
 * (part, expert, block of COB output channels) and as many consecutive input channels, one per invocation. All
 * lanes walk the same pixels, so the output gradient of the COB channels is the same for every lane: lane l loads
 * channels co0 + l, co0 + 8 + l, … and subgroupBroadcast hands them to the others (COB / 8 loads per pixel instead
 * of COB). The input window is each lane's own. COB = 16 is the block: larger ones compile much longer for little
 * gain. One workgroup size for every channel count keeps it to one pipeline per (K, COB).
 *
 * `v4` (K = 3, pad 1, the width a multiple of 4, same-size output): each step covers 4 pixels (vec4Steps).
 */
function gradProgramSub(K: number, cob: number, accumulate: boolean, WG: number, v4 = false): Program {
  return program(`conv2d_grad_weight subgroups ${K} ${cob} ${accumulate} ${WG} ${v4}`, () => gradProgramSubSpec(K, cob, accumulate, WG, v4));
}

function gradProgramSubSpec(K: number, cob: number, accumulate: boolean, WG: number, v4 = false): ProgramSpec {
  const KK = K * K;
  const accDecl: string[] = [];
  for (let c = 0; c < cob; c++) for (let t = 0; t < KK; t++) accDecl.push(`var a${c}_${t} = 0.0;`);
  // Lane l loads the output gradient of channels co0 + l, co0 + 8 + l, …
  const lanes: string[] = [];
  for (let j = 0; j < cob / 8; j++)
    lanes.push(`let myCo${j} = co0 + ${8 * j}u + (sid % 8u);
  let coOk${j} = myCo${j} >= p.coLo && myCo${j} < p.coHi;
  let coOff${j} = (clamp(myCo${j}, p.coLo, p.coHi - 1u) - p.coLo) * p.Hout * p.Wout;`);
  const { decl, rows, init, loop, step } = v4 ? vec4Steps(cob) : pixelSteps(K, cob);
  const { prelude, ...bindings } = gradSpec(v4);
  return {
    name: 'conv2d_grad_weight',
    ...bindings,
    workgroupSize: WG,
    enables: ['subgroups'],
    header: /* wgsl */ `${prelude}
fn put(idx: u32, v: f32) {
  PW[idx] ${accumulate ? '+=' : '='} v;
}

fn putBias(idx: u32, v: f32) {
  PB[idx] ${accumulate ? '+=' : '='} v;
}`,
    body: /* wgsl */ `
  // Everything but ci is uniform across the workgroup: no divergent branch may precede the broadcasts.
  let g = wid.x + wid.y * nwg.x;
  let blocks = p.E * p.coBlocks * p.ciChunks;
  if (g >= blocks * p.parts) { return; }
  let part = g / blocks;
  let r = g % blocks;
  let chunk = r % p.ciChunks;
  let cb = (r / p.ciChunks) % p.coBlocks;
  let e = r / (p.ciChunks * p.coBlocks);
  let co0 = cb * ${cob}u;
  if (co0 + ${cob}u <= p.coLo || co0 >= p.coHi) { return; }
  if ((chunk + 1u) * ${WG}u <= p.ciLo || chunk * ${WG}u >= p.ciHi) { return; } // no channel of this input slab
  let ci = chunk * ${WG}u + li;
  let ciOk = ci >= p.ciLo && ci < p.ciHi;
  let ciC = clamp(ci, p.ciLo, p.ciHi - 1u);
  ${lanes.join('\n  ')}
  let y0 = part * p.rowsPerPart;
  let y1 = min(p.Hout, y0 + p.rowsPerPart);
  let plane = p.Hin * p.Win;
  ${accDecl.join(' ')}
  ${Array.from({ length: cob }, (_, c) => `var b${c} = 0.0;`).join(' ')}
  ${decl}
  for (var v = p.vLo; v < p.vHi; v++) {
    let found = sourceOf(v, e);
    if (found < 0) { continue; }
    let src = u32(found);
    let xc = (src - p.srcLo) * p.xSample + p.xBase + (ciC - p.ciLo) * plane;
    let gs = (v - p.vLo) * p.gSample + p.gBase;
    for (var y = y0; y < y1; y++) {
      ${rows}
      let gr = gs + y * p.Wout;
      ${init}
      for (${loop}) {
        ${step}
      }
    }
  }
  if (!ciOk) { return; }
  ${weightWrites(cob, KK)}`,
  };
}

interface Steps {
  /** Declarations before the sample loop, per row (input rows), at its start, the pixel loop header, its body. */
  decl: string;
  rows: string;
  init: string;
  loop: string;
  step: string;
}

/** One pixel per step: a K×K window of scalars slides along the row, one new column loaded per step. */
function pixelSteps(K: number, cob: number): Steps {
  const w = slidingWindow(K);
  const step = [w.shift];
  for (let j = 0; j < cob / 8; j++) step.push(`let gl${j} = select(0.0, G[gr + coOff${j} + xx], coOk${j});`);
  for (let c = 0; c < cob; c++) step.push(`let g${c} = subgroupBroadcast(gl${c >> 3}, ${c % 8}u); b${c} += g${c};`, w.fma(c));
  return { decl: w.decl, rows: w.rows, init: w.init, loop: 'var xx = 0u; xx < p.Wout; xx++', step: step.join(' ') };
}

/**
 * The K×K window of scalars w{ky}_{kx} that slides along the input rows y - pad .. y - pad + K - 1, one new column
 * loaded per pixel xx (shift), and the multiply-adds of output channel c's gradient g{c} into its K² sums.
 */
function slidingWindow(K: number) {
  const win = (ky: number, kx: number) => `w${ky}_${kx}`;
  const decl: string[] = [];
  const rows: string[] = [];
  const init: string[] = [];
  const shift: string[] = [];
  for (let ky = 0; ky < K; ky++) {
    for (let kx = 0; kx < K; kx++) decl.push(`var ${win(ky, kx)} = 0.0;`);
    rows.push(`let iy${ky} = i32(y) + ${ky} - p.pad;
        let rv${ky} = iy${ky} >= 0 && iy${ky} < i32(p.Hin);
        let row${ky} = xc + u32(clamp(iy${ky}, 0, i32(p.Hin) - 1)) * p.Win;`);
    for (let kx = 1; kx < K; kx++) init.push(`${win(ky, kx)} = ld(row${ky}, rv${ky}, ${kx - 1} - p.pad);`);
    for (let kx = 0; kx < K - 1; kx++) shift.push(`${win(ky, kx)} = ${win(ky, kx + 1)};`);
    shift.push(`${win(ky, K - 1)} = ld(row${ky}, rv${ky}, i32(xx) + ${K - 1} - p.pad);`);
  }
  const fma = (c: number) =>
    Array.from({ length: K * K }, (_, t) => `a${c}_${t} += g${c} * ${win(Math.floor(t / K), t % K)};`).join(' ');
  return { decl: decl.join(' '), rows: rows.join('\n        '), init: init.join(' '), shift: shift.join(' '), fma };
}

/**
 * Stores the sums a{c}_{t} and b{c} of one lane (input channel ci, output channels co0 ..) into this part's slot of
 * the partial weight and bias gradients.
 */
function weightWrites(cob: number, KK: number): string {
  const writes = [`let pw = part * p.E * p.Cout * p.Cin * ${KK}u;
  let pb = part * p.E * p.Cout;`];
  for (let c = 0; c < cob; c++)
    writes.push(`if (co0 + ${c}u < p.coHi) {
    let wo = pw + ((e * p.Cout + co0 + ${c}u) * p.Cin + ci) * ${KK}u;
    ${Array.from({ length: KK }, (_, t) => `put(wo + ${t}u, a${c}_${t});`).join(' ')}
    if (ci == 0u) { putBias(pb + e * p.Cout + co0 + ${c}u, b${c}); }
  }`);
  return writes.join('\n  ');
}

/**
 * 4 pixels per step (K = 3): a lane reads one vec4 per input row, sliding a 12-pixel window of three vec4s (A:
 * pixels xx-4..xx-1, B: xx..xx+3, C: xx+4..xx+7), and one vec4 of output gradient per 8 channels, and adds
 * dot(gradient, input) of 4 pixels to each accumulator. The accumulators, far more than the registers, are then
 * loaded and stored once per 4 pixels instead of once per pixel.
 */
function vec4Steps(cob: number): Steps {
  const rows: string[] = [];
  const init: string[] = [];
  const step: string[] = [];
  for (let k = 0; k < 3; k++) {
    rows.push(`let iy${k} = i32(y) + ${k - 1}; let rv${k} = iy${k} >= 0 && iy${k} < i32(p.Hin);
        let r4_${k} = (xc + u32(clamp(iy${k}, 0, i32(p.Hin) - 1)) * p.Win) / 4u;`);
    init.push(`var A${k} = vec4f(0.0); var B${k} = select(vec4f(0.0), X[r4_${k}], rv${k});`);
    step.push(`let C${k} = select(vec4f(0.0), X[r4_${k} + min(q + 1u, w4 - 1u)], rv${k} && q + 1u < w4);
        let t${k}_0 = vec4f(A${k}.w, B${k}.xyz); let t${k}_1 = B${k}; let t${k}_2 = vec4f(B${k}.yzw, C${k}.x);`);
  }
  init.push('let gr4 = gr / 4u; let w4 = p.Wout / 4u;');
  for (let j = 0; j < cob / 8; j++) step.push(`let gl${j} = select(vec4f(0.0), G[gr4 + coOff${j} / 4u + q], coOk${j});`);
  for (let c = 0; c < cob; c++) {
    step.push(`let g${c} = subgroupBroadcast(gl${c >> 3}, ${c % 8}u); b${c} += dot(g${c}, vec4f(1.0));`);
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) step.push(`a${c}_${ky * 3 + kx} += dot(g${c}, t${ky}_${kx});`);
  }
  step.push(...Array.from({ length: 3 }, (_, k) => `A${k} = B${k}; B${k} = C${k};`));
  return { decl: '', rows: rows.join('\n      '), init: init.join(' '), loop: 'var q = 0u; q < w4; q++', step: step.join(' ') };
}

/**
 * Weight and bias gradients. x: (Nin, Cin, Hin, Win) forward input; gy: (Nv, Cout, Hout, Wout) output gradient
 * (already masked by the ReLU); table as in conv2dKernel (null: identity, E = 1).
 * Returns dw (E, Cout, Cin, K, K) and db (E, Cout).
 */
export function conv2dWeightGradKernel(x: Tensor, gy: Tensor, table: Tensor | null, E: number, K: number, pad: number, variant = engineVariant()): { dw: Tensor; db: Tensor } {
  const rt = engine().rt;
  const [Nin, Cin, Hin, Win] = x.shape;
  const [Nv, Cout, Hout, Wout] = gy.shape;
  if (K === 3 && pad === 1 && Hout === Hin && Wout === Win) {
    const m = convAlgorithm({ ci: Cin, co: Cout, pixels: Nv * Hout * Wout, pass: 'weight' }, variant);
    if (m && winogradWeightGradFits(m, Nin, Cin, Nv, Cout, E)) return winogradWeightGrad(x, gy, table, E, m, subgroupSize(variant) > 0);
  }
  // Subgroup path: a workgroup is one full subgroup, so that the broadcast lanes 0-7 are always active.
  const subSize = subgroupSize(variant);
  const sub = subSize > 0;
  const cob = sub ? (Cout > 8 ? 16 : 8) : COB;
  const coBlocks = ceilDiv(Cout, cob);
  const ciChunks = sub ? ceilDiv(Cin, subSize) : 1;
  const pairs = sub ? E * coBlocks * ciChunks * subSize : E * coBlocks * Cin;
  // Row parts in parallel, as many as the partial sums of the weights fit one binding.
  const maxParts = Math.floor(rt.maxBinding / (4 * E * Cout * Cin * K * K));
  const parts = Math.max(1, Math.min(Hout, Math.ceil(TARGET_INVOCATIONS / pairs), maxParts));
  const rowsPerPart = ceilDiv(Hout, parts);
  const pw = Tensor.empty([parts, E * Cout * Cin * K * K]);
  const pb = Tensor.empty([parts, E * Cout]);
  if (pw.bytes > rt.maxBinding) throw new LimitError('conv2d weight gradient: the partial sums exceed one storage binding');
  const xSlabs = planSlabs(x, Nin, Cin, Hin * Win, 'conv2d weight gradient input');
  const gSlabs = planSlabs(gy, Nv, Cout, Hout * Wout, 'conv2d weight gradient');
  const multi = xSlabs.length > 1 || gSlabs.length > 1;
  if (multi) {
    rt.clear(pw.buffer, 0, pw.bytes);
    rt.clear(pb.buffer, 0, pb.bytes);
  }
  // vec4 steps: rows and slab bases are multiples of 4 when the width is (as in the forward's vec4 path).
  const v4 = sub && K === 3 && pad === 1 && Win % 4 === 0 && Wout === Win && Hout === Hin;
  const prog = sub ? gradProgramSub(K, cob, multi, subSize, v4) : gradProgram(K);
  for (const gs of gSlabs)
    for (const xs of xSlabs) {
      if (!table && (xs.nHi <= gs.nLo || gs.nHi <= xs.nLo)) continue;
      const bindings = { X: xs.range, G: gs.range, T: table ?? gs.range, PW: pw, PB: pb };
      const uniforms = {
        Hin, Win, Hout, Wout, Cin, Cout, E, pad, nv: Nv, routed: table ? 1 : 0, parts, rowsPerPart,
        srcLo: xs.nLo, srcHi: xs.nHi, xBase: xs.base, xSample: Cin * Hin * Win, ciLo: xs.cLo, ciHi: xs.cHi,
        vLo: gs.nLo, vHi: gs.nHi, gBase: gs.base, gSample: Cout * Hout * Wout, coLo: gs.cLo, coHi: gs.cHi,
        accumulate: multi ? 1 : 0, coBlocks, ciChunks,
      };
      // Subgroup kernel: one workgroup per (part, expert, channel block, input chunk); else one invocation per pair and part.
      if (sub) prog.dispatch(bindings, uniforms, flatGrid(E * coBlocks * ciChunks * parts));
      else prog.dispatchFlat(pairs * parts, bindings, uniforms);
    }
  const dwFlat = sumKernel(pw, [0]);
  const dbFlat = sumKernel(pb, [0]);
  pw.dispose();
  pb.dispose();
  const dw = dwFlat.view([E, Cout, Cin, K, K]);
  const db = dbFlat.view([E, Cout]);
  dwFlat.dispose();
  dbFlat.dispose();
  return { dw, db };
}
