/**
 * 2-D convolution, stride 1, zero padding, odd square kernels, with optional routing: output sample o is computed
 * from input sample table[o][0] with expert table[o][1]'s weights (the plain conv is the identity table, E = 1).
 * The same kernel computes the input gradient (a convolution of the output gradient with the flipped, transposed
 * weights that gathers every output sample that read the input sample).
 *
 * Direct convolution with register blocking and no workgroup memory: each invocation computes COB output channels
 * × PX horizontally adjacent pixels, reusing each loaded input row segment for all taps and channels. With
 * subgroups, the weights are loaded once per subgroup and broadcast (see convProgram). Tensors larger than one
 * storage binding are processed in slabs (see conv2d-slabs.ts), accumulating into the output.
 *
 * Why the blocking looks as it does: on lavapipe (llvmpipe) an invocation is one lane of an 8-wide SIMD vector, and
 * every storage load whose address is not a compile-time constant becomes 8 guarded scalar loads, several times
 * the cost of the multiply-add it feeds, whatever the load's width. So the kernel minimises loads rather than
 * arithmetic: weights are loaded once per subgroup and broadcast, the common case reads 16 bytes at a time (input
 * rows as vec4s when the width is a multiple of 4; weights repacked by packWeights so that one input channel's
 * taps of a 16-channel block are consecutive vec4s), and on lavapipe neighbouring lanes share input rows
 * (CodeOpts.rows). The packed weights also serve tensors split into slabs (output slabs start on a channel block).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { ceilDiv, MAX_GRID, Program, type UniformType, program, type ProgramSpec } from './program.ts';
import { addInto, planSlabs } from './conv2d-slabs.ts';
import { convAlgorithm, engineVariant, fixedSubgroupSize, subgroupSize, type KernelVariant } from './variant.ts';
import { paddedChannels, winogradConv, winogradFits, type WinogradArgs } from './conv2d-winograd.ts';
import { cachedTransform, type WeightLayout } from './winograd-weights.ts';

// 3×3: 8 pixels × 16 channels per invocation was the fastest block on lavapipe; larger blocks hold more
// accumulators than LLVM keeps in registers and compile for tens of seconds. Other kernel sizes use a smaller
// block for the same compile-time reason. With row sharing a workgroup is one column of 64 rows, so that a
// subgroup holds vertically adjacent rows.
const blockFor = (K: number, rows = 0) =>
  K === 3 ? { PX: 8, MAX_COB: 16, WG_X: rows ? 1 : 4, WG_Y: rows ? 64 : 16 } : { PX: 4, MAX_COB: 4, WG_X: 8, WG_Y: 8 };

/**
 * Output channels per invocation of a 3×3 (or other) convolution with `channels` outputs. Outputs of 16 channels or
 * fewer take blocks of 8 at most: on lavapipe the 16-channel block is 10-20% faster there (16→16, 32→16, 48→16 at
 * 640×480) but compiles in 5.5 s against 1.4 s, and MoE-Fusion's inference needs it for no other layer once the
 * wide ones run Winograd: a cold-cache fuse of the sample took 15.0-15.3 s against 19.3-23.0 s with it (shared
 * machine), and a warm one 1.005-1.08× the CPU time (docs/bench.md).
 */
function outputBlock(K: number, channels: number): number {
  const { MAX_COB } = blockFor(K);
  return channelBlock(channels, channels > 16 ? MAX_COB : Math.min(MAX_COB, 8));
}

/**
 * Lanes per subgroup when the variant's 3×3 kernels may share input rows between lanes, else 0. Only on software
 * adapters (lavapipe), where it was measured, and where subgroups are known to be runs of consecutive invocations of
 * a fixed size: the kernel derives a lane's place in its subgroup from its row.
 */
function rowSharingLanes(v: KernelVariant): number {
  const size = fixedSubgroupSize(v);
  return v.rowSharing && engine().rt.handle.summary.isSoftware && size > 0 && 64 % size === 0 ? size : 0;
}

/** Output channels per invocation: the smallest power of two ≥ the channel count, at most MAX_COB. */
function channelBlock(channels: number, max: number): number {
  let c = 1;
  while (c < channels && c < max) c *= 2;
  return c;
}

/** The uniforms of the convolution kernels (slab offsets, strides of the weight layout, switches). */
const CONV_UNIFORMS: Record<string, UniformType> = {
  Hin: 'u32', Win: 'u32', Hout: 'u32', Wout: 'u32',
  cin: 'u32', pad: 'i32', nv: 'u32', routed: 'u32',
  srcLo: 'u32', srcHi: 'u32', xBase: 'u32', xSample: 'u32',
  oLo: 'u32', oBase: 'u32', oSample: 'u32', coLo: 'u32',
  coCount: 'u32', coBlocks: 'u32', wE: 'u32', wO: 'u32',
  wI: 'u32', ciLo: 'u32', gather: 'u32', addBias: 'u32',
  relu: 'u32', alwaysWrite: 'u32', bE: 'u32',
  cinAll: 'u32', blocksAll: 'u32',
};

/** Code generation options: `flip` reads taps mirrored (input gradient); `sub` shares weights across a subgroup. */
interface CodeOpts {
  K: number;
  flip: boolean;
  COB: number;
  sub: boolean;
  /** Reads the input as vec4s (K = 3, pad 1, width and every row start a multiple of 4). */
  v4: boolean;
  /** Weights packed by packWeights (vec4s of 4 output channels; needs `sub`, COB % 4 == 0, aligned output slabs). */
  pk: boolean;
  /**
   * Subgroup size S when lanes share input rows (needs `v4`, `pk`, K = 3): each lane loads only its own centre
   * row and takes the rows above and below from its neighbours (subgroupShuffleUp/Down); the rows just outside
   * the subgroup's S rows are loaded one vec4 per lane by lanes 0-7 and broadcast to the first and last lane:
   * 5 vec4 loads per lane and input channel instead of 12. 0: off.
   */
  rows: number;
}

/**
 * WGSL for one block shape. Without `sub`, every invocation loads its COB·K² weights per input channel itself; on
 * lavapipe these are per-lane loads (8 scalar loads each, costlier than the FMAs they feed). With `sub`, lane l of
 * a subgroup (size ≥ 8) loads the K² taps of output channel co0 + l and subgroupBroadcast hands them to the other
 * lanes: 8× fewer weight loads. With `pk` (packed weights) lane l loads vec4s l, l + 8, … of the channel's
 * K²·COB/4 and each broadcast vec4 feeds 4 output channels. The body has no divergent branches (rows outside the
 * image are clamped and zeroed by select) so that the broadcasts sit in uniform control flow.
 */
function convProgram(o: CodeOpts): Program {
  // A 1×1 kernel reads its one tap the same way flipped or not: one text and pipeline for both (the tests compare).
  const flip = o.flip && o.K > 1;
  return program(`conv2d ${o.K} ${flip} ${o.COB} ${o.sub} ${o.v4} ${o.pk} ${o.rows}`, () => convProgramSpec(o));
}

function convProgramSpec(o: CodeOpts): ProgramSpec {
  const { K, flip, COB, sub, v4, pk, rows: S } = o;
  const NV = (K * K * COB) / 4; // packed vec4s per input channel
  const slots = Math.ceil(NV / 8);
  const { PX, WG_X, WG_Y } = blockFor(K, S);
  const quads = PX / 4;
  const span = PX + K - 1;
  const KK = K * K;
  const lanes = Math.min(COB, 8);
  const groups = Math.ceil(COB / 8);
  const acc = (c: number, q: number) => `acc${c}_${q}`;
  const accDecl: string[] = [];
  for (let c = 0; c < COB; c++) for (let q = 0; q < quads; q++) accDecl.push(`var ${acc(c, q)} = vec4f(0.0);`);
  const wRows = pk
    ? `let wp = ((e * p.blocksAll + p.coLo / ${COB}u + cb) * p.cinAll + p.ciLo) * ${NV}u + (sid % 8u); let wLast = arrayLength(&Wt) - 1u;`
    : sub
    ? Array.from({ length: groups }, (_, g) => `let wl${g} = wb + min(co0 + ${g * 8}u + (sid % ${lanes}u), coLast) * p.wO;`).join('\n    ')
    : Array.from({ length: COB }, (_, c) => `let w${c} = wb + min(co0 + ${c}u, coLast) * p.wO;`).join('\n    ');
  // Subgroup path: lane loads of this input channel's taps (one per group of 8 output channels).
  const laneLoads: string[] = [];
  if (pk) for (let k = 0; k < slots; k++) laneLoads.push(`let s${k} = Wt[${8 * k + 8 > NV ? `min(wc + ${8 * k}u, wLast)` : `wc + ${8 * k}u`}];`);
  else if (sub) for (let g = 0; g < groups; g++) for (let t = 0; t < KK; t++) laneLoads.push(`let q${g}_${t} = Wt[wl${g} + wc + ${t}u];`);
  const weight = (c: number, t: number) =>
    sub ? `subgroupBroadcast(q${Math.floor(c / 8)}_${t}, ${c % 8}u)` : `Wt[w${c} + wc + ${t}u]`;
  const taps: string[] = [];
  for (let ky = 0; ky < K; ky++) {
    const nv4 = PX / 4 + 2;
    const comp = 'xyzw';
    // vec4 paths: the row's vec4s v0.. (shared rows, or loaded here), then its pixels x0.. (v0.w is pixel px0 - 1).
    const vec4s = S
      ? Array.from({ length: nv4 }, (_, j) => `let v${j} = m${ky}_${j};`)
      : Array.from({ length: nv4 }, (_, j) => `let v${j} = select(vec4f(0.0), X[r4 + qa${j}], ok && ok${j});`);
    const loads = v4
      ? vec4s.join(' ') + '\n        ' + Array.from({ length: span }, (_, m) => `let x${m} = v${(m + 3) >> 2}.${comp[(m + 3) & 3]};`).join(' ')
      : Array.from({ length: span }, (_, m) => `let x${m} = select(0.0, X[row + cq${m}], ok && cok${m});`).join(' ');
    const fmas: string[] = [];
    for (let kx = 0; kx < K; kx++) {
      const t = flip ? KK - 1 - (ky * K + kx) : ky * K + kx;
      const xv = Array.from({ length: quads }, (_, q) => `let xv${q} = vec4f(x${kx + 4 * q}, x${kx + 4 * q + 1}, x${kx + 4 * q + 2}, x${kx + 4 * q + 3});`);
      const body: string[] = [];
      if (pk)
        for (let g = 0; g < COB / 4; g++) {
          const i = t * (COB / 4) + g;
          body.push(`let b${g} = subgroupBroadcast(s${i >> 3}, ${i & 7}u);`);
          for (let c = 4 * g; c < 4 * g + 4; c++) for (let q = 0; q < quads; q++) body.push(`${acc(c, q)} += b${g}.${'xyzw'[c & 3]} * xv${q};`);
        }
      else for (let c = 0; c < COB; c++) {
        body.push(`let wv${c} = ${weight(c, t)};`);
        for (let q = 0; q < quads; q++) body.push(`${acc(c, q)} += wv${c} * xv${q};`);
      }
      fmas.push(`{ ${xv.join(' ')}\n          ${body.join(' ')} }`);
    }
    taps.push(`{ ${S ? '' : `let iy = i32(yc) + ${ky} - p.pad;
        let ok = iy >= 0 && iy < i32(p.Hin);
        let row = xc + u32(clamp(iy, 0, i32(p.Hin) - 1)) * p.Win;`}
        ${v4 && !S ? 'let r4 = row >> 2u;' : ''}
        ${loads}
        ${fmas.join('\n        ')}
      }`);
  }
  if (S) laneLoads.push(sharedRows());
  const stores: string[] = [];
  for (let c = 0; c < COB; c++) {
    const q = Array.from({ length: quads }, (_, q) => `for (var j = 0u; j < 4u; j++) { if (px0 + ${4 * q}u + j < p.Wout) { store(base + ${4 * q}u + j, ${acc(c, q)}[j] + bias); } }`);
    stores.push(`if (co0 + ${c}u <= coLast) {
    let co = co0 + ${c}u;
    var bias = 0.0;
    if (p.addBias == 1u && found) { bias = Bias[expert * p.bE + co]; }
    let base = rowBase + (co - p.coLo) * outPlane;
    ${q.join('\n    ')}
  }`);
  }
  return {
    name: 'conv2d', // dispatches say conv2d_grad_input for the input gradient
    inputs: { X: v4 ? 'vec4f' : 'f32', Wt: pk ? 'vec4f' : 'f32', Bias: 'f32', T: 'u32' },
    outputs: { O: 'f32', Found: 'u32' },
    uniforms: CONV_UNIFORMS,
    workgroupSize: [WG_X, WG_Y],
    enables: sub ? ['subgroups'] : [],
    header: /* wgsl */ `fn store(idx: u32, value: f32) {
  var r = value;
  if (p.relu == 1u) { r = max(r, 0.0); }
  O[idx] = r;
}`,
    body: /* wgsl */ `
  let px0 = gid.x * ${PX}u;
  let y = gid.y;
  // No early return: out-of-image invocations compute on clamped rows and skip the stores.
  let live = px0 < p.Wout && y < p.Hout;
  let yc = min(y, p.Hout - 1u);
  let cb = wid.z % p.coBlocks;
  let o = p.oLo + wid.z / p.coBlocks;
  let co0 = p.coLo + cb * ${COB}u;
  let coLast = p.coLo + p.coCount - 1u;
  let plane = p.Hin * p.Win;
  let ix0 = i32(px0) - p.pad;
  ${v4 ? v4Cols(PX) : scalarCols(span)}
  ${S ? rowSetup(S) : ''}
  ${accDecl.join(' ')}
  var found = false;
  var expert = 0u;
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
        src = T[2u * v];
      }
    } else if (v != o) {
      continue;
    }
    if (src < p.srcLo || src >= p.srcHi) { continue; }
    found = true;
    expert = e;
    let xs = (src - p.srcLo) * p.xSample + p.xBase;
    let wb = e * p.wE + p.ciLo * p.wI;
    ${wRows}
    for (var ci = 0u; ci < p.cin; ci++) {
      let xc = xs + ci * plane;
      let wc = ${pk ? `wp + ci * ${NV}u` : 'ci * p.wI'};
      ${laneLoads.join(' ')}
      ${taps.join('\n      ')}
    }
  }
  // Whether output sample o read anything in this input slab (addInto skips it otherwise); one writer per sample.
  if (all(wid.xy == vec2u(0u)) && all(lid.xy == vec2u(0u)) && wid.z % p.coBlocks == 0u) { Found[o - p.oLo] = u32(found); }
  // With alwaysWrite, outputs with no input in this slab (other samples, unrouted) are written too, as zeros.
  if (!live || (!found && p.alwaysWrite == 0u)) { return; }
  let outPlane = p.Hout * p.Wout;
  let rowBase = (o - p.oLo) * p.oSample + p.oBase + y * p.Wout + px0;
  ${stores.join('\n  ')}`,
  };
}

/**
 * Row sharing, per invocation: the lane's place in its subgroup (lane, from its row: subgroups are runs of S
 * rows), the offset of its own input row (rows past the image read as zeros and still feed the shuffles), and
 * its share of the rows outside the subgroup: lanes 0-3 the vec4s 0-3 of the row above the first lane's, lanes
 * 4-7 those of the row below the last lane's.
 * (Selecting on conditions of the row rather than of subgroup_invocation_id measured faster on lavapipe.)
 */
function rowSetup(S: number): string {
  const lines = ['let lane = y % ' + S + 'u; let firstLane = lane == 0u; let lastLane = lane == ' + (S - 1) + 'u;'];
  lines.push('let rok1 = y < p.Hin; let rowOff1 = min(y, p.Hin - 1u) * p.Win;');
  lines.push(`let ey = i32(y - lane) + select(-1, ${S}, lane % 8u >= 4u); let ec = i32(px0 >> 2u) + i32(lane % 4u) - 1;
  let eok = ey >= 0 && ey < i32(p.Hin) && ec >= 0 && ec < w4; let eOff = u32(clamp(ey, 0, i32(p.Hin) - 1)) * p.Win; let eq = u32(clamp(ec, 0, w4 - 1));`);
  return lines.join('\n  ');
}

/** Row sharing, per input channel: the three input rows of the lane as vec4s m{row}_{j} (see rowSetup). */
function sharedRows(): string {
  const lines: string[] = [];
  for (let j = 0; j < 4; j++) lines.push(`let m1_${j} = select(vec4f(0.0), X[((xc + rowOff1) >> 2u) + qa${j}], rok1 && ok${j});`);
  lines.push('let extra = select(vec4f(0.0), X[((xc + eOff) >> 2u) + eq], eok);');
  for (let j = 0; j < 4; j++)
    lines.push(`let m0_${j} = select(subgroupShuffleUp(m1_${j}, 1u), subgroupBroadcast(extra, ${j}u), firstLane);`,
      `let m2_${j} = select(subgroupShuffleDown(m1_${j}, 1u), subgroupBroadcast(extra, ${4 + j}u), lastLane);`);
  return lines.join(' ');
}

/**
 * Scalar path: columns ix0 + m of the input row segment, clamped into the row, and whether each lies inside it,
 * computed once per invocation (the loads select zero outside). Clamping at every load instead (a helper called
 * 3·span times per input channel) made SwiftShader's shader compiler (Chromium's software WebGPU) run for
 * minutes; lavapipe compiled and ran both alike.
 */
function scalarCols(span: number): string {
  return Array.from({ length: span }, (_, m) => `let cq${m} = u32(clamp(ix0 + ${m}, 0, i32(p.Win) - 1)); let cok${m} = ix0 + ${m} >= 0 && ix0 + ${m} < i32(p.Win);`).join('\n  ');
}

/** vec4 columns px0/4 - 1 + j of the vec4 path, clamped into the row, and whether each lies inside it. */
function v4Cols(PX: number): string {
  const lines: string[] = ['let w4 = i32(p.Win >> 2u);'];
  for (let j = 0; j < PX / 4 + 2; j++)
    lines.push(`let c${j} = i32(px0 >> 2u) + ${j - 1}; let qa${j} = u32(clamp(c${j}, 0, w4 - 1)); let ok${j} = c${j} >= 0 && c${j} < w4;`);
  return lines.join('\n  ');
}

export interface ConvArgs {
  /** (Nx, Cx, Hin, Win): the input (forward) or the output gradient (input gradient). */
  x: Tensor;
  /** Weights (E, Cout, Cin, K, K). */
  w: Tensor;
  bias: Tensor | null;
  /** (Nv, 2) u32 [inputIndex, expertIndex] per output sample, or null for the identity (E = 1). */
  table: Tensor | null;
  pad: number;
  relu: boolean;
  /** The kernel variant (default: the engine's). */
  variant?: KernelVariant;
}

/** Conv forward: out[o] = conv(x[table[o][0]], w[table[o][1]]) + bias[table[o][1]], ReLU optional. */
export function conv2dKernel(a: ConvArgs): Tensor {
  const [E, Cout, Cin, K] = a.w.shape;
  const [Nx, , Hin, Win] = a.x.shape;
  const nv = a.table ? a.table.shape[0] : Nx;
  const v = a.variant ?? engineVariant();
  const m = winogradTile(v, K, a.pad, Nx, Cin, nv, Cout, Hin, Win, false);
  if (m) {
    const l = { ci: Cin, co: Cout, wE: Cout * Cin * 9, wO: Cin * 9, wI: 9, flip: false };
    return runWinograd(v, a.x, a.w, m, l, { bias: a.bias, table: a.table, relu: a.relu, gather: false, nOut: nv, nv });
  }
  const out = Tensor.empty([nv, Cout, Hin + 2 * a.pad - K + 1, Win + 2 * a.pad - K + 1]);
  runConv({ ...a, variant: v }, out, { gather: false, flip: false, K, nv, wE: Cout * Cin * K * K, wO: Cin * K * K, wI: K * K, bE: Cout, experts: E });
  return out;
}

/** Input gradient of conv2dKernel (without the ReLU: pass the masked output gradient as `x`). nIn: input samples. */
export function conv2dInputGradKernel(gy: Tensor, w: Tensor, table: Tensor | null, pad: number, nIn: number, variant = engineVariant()): Tensor {
  const [E, Cout, Cin, K] = w.shape;
  const [nv, , Hout, Wout] = gy.shape;
  const pt = K - 1 - pad;
  const m = winogradTile(variant, K, pt, nv, Cout, nIn, Cin, Hout, Wout, true);
  if (m) {
    const l = { ci: Cout, co: Cin, wE: Cout * Cin * 9, wO: 9, wI: Cin * 9, flip: true };
    return runWinograd(variant, gy, w, m, l, { bias: null, table, relu: false, gather: true, nOut: nIn, nv });
  }
  const out = Tensor.empty([nIn, Cin, Hout + 2 * pt - K + 1, Wout + 2 * pt - K + 1]);
  const args: ConvArgs = { x: gy, w, bias: null, table, pad: pt, relu: false, variant };
  runConv(args, out, { gather: true, flip: true, K, nv, wE: Cout * Cin * K * K, wO: K * K, wI: Cin * K * K, bE: 0, experts: E });
  return out;
}

/**
 * The Winograd tile (4 or 6) for a 3×3, padding-1 convolution when conv2d-choice.ts picks one for its shape and the
 * transformed tiles fit the bindings; 0: the direct kernel. Input (nSrc, cx, H, W) → output (nOut, co, H, W).
 */
function winogradTile(v: KernelVariant, K: number, pad: number, nSrc: number, cx: number, nOut: number, co: number, H: number, W: number, grad: boolean): number {
  if (K !== 3 || pad !== 1) return 0;
  // The table speaks of the forward's channels, for the input gradient too.
  const m = convAlgorithm({ ci: grad ? co : cx, co: grad ? cx : co, pixels: nOut * H * W, pass: grad ? 'input' : 'forward' }, v);
  return m && winogradFits(m, nSrc, cx, nOut, co) ? m : 0;
}

function runWinograd(v: KernelVariant, x: Tensor, w: Tensor, m: number, l: WeightLayout, o: Omit<WinogradArgs, 'm' | 'x' | 'u' | 'co' | 'sub'>): Tensor {
  const { ciP, coP } = paddedChannels(l.ci, l.co);
  const u = cachedTransform(w, m, l, ciP, coP);
  try {
    return winogradConv({ ...o, m, x, u, co: l.co, sub: subgroupSize(v) > 0 });
  } finally {
    u.dispose();
  }
}

interface Layout {
  gather: boolean;
  flip: boolean;
  K: number;
  nv: number;
  wE: number;
  wO: number;
  wI: number;
  bE: number;
  experts: number;
}

function runConv(a: ConvArgs, out: Tensor, l: Layout): void {
  const rt = engine().rt;
  const [Nx, Cx, Hin, Win] = a.x.shape;
  const [No, Co, Hout, Wout] = out.shape;
  if (l.K % 2 !== 1) throw new Error(`conv2d: kernel size ${l.K} must be odd`);
  if (a.w.bytes > rt.maxBinding) throw new LimitError('conv2d: the weights exceed one storage binding');
  if (out.size === 0) return;
  const cob = outputBlock(l.K, Co);
  const xSlabs = planSlabs(a.x, Nx, Cx, Hin * Win, 'conv2d input');
  const oSlabs = planSlabs(out, No, Co, Hout * Wout, 'conv2d output', cob);
  const multi = xSlabs.length > 1;
  // Every row start is a multiple of 4 when the width is (slab bases are multiples of the plane or of 64). Not for
  // fewer than 4 output channels: there the vec4 path measured slower (16→1: +10%), the loads being few already.
  const v4 = cob >= 4 && l.K === 3 && a.pad === 1 && Win % 4 === 0 && Wout === Win;
  const v = a.variant ?? engineVariant();
  const sub = subgroupSize(v) > 0;
  // Packed weights are blocks of cob output channels counted from channel 0: output slabs must start on a block.
  const blocksAll = ceilDiv(Co, cob);
  const packedBytes = l.experts * blocksAll * cob * Cx * l.K * l.K * 4;
  const pk = sub && cob % 4 === 0 && oSlabs.every((os) => os.cLo % cob === 0) && packedBytes <= rt.maxBinding;
  const rows = v4 && pk ? rowSharingLanes(v) : 0;
  const { PX, WG_X, WG_Y } = blockFor(l.K, rows);
  const prog = convProgram({ K: l.K, flip: l.flip, COB: cob, sub, v4, pk, rows });
  const packed = pk ? packWeights(a.w, l, Co, Cx, cob) : null;
  // Input slabs (an input larger than one binding): the first that can contribute writes the output slab, each
  // further one a partial output added to the output samples it reached (ReLU once a sample's last channel slab
  // is in). Reading the output back in the convolution's own stores instead made lavapipe take 13 s rather than 4 s
  // to compile the kernel.
  const partial = multi ? Tensor.empty([Math.max(...oSlabs.map((os) => os.count))]) : null;
  const found = Tensor.empty([Math.max(...oSlabs.map((os) => os.nHi - os.nLo))], 'u32');
  for (const os of oSlabs) {
    const coCount = os.cHi - os.cLo;
    const coBlocks = ceilDiv(coCount, cob);
    const z = (os.nHi - os.nLo) * coBlocks;
    if (z > MAX_GRID) throw new LimitError(`conv2d: ${z} output blocks exceed one grid dimension`);
    // Identity routing reads only the output's own samples; routed tables are known only to the GPU.
    const sources = xSlabs.filter((xs) => a.table || (xs.nLo < os.nHi && os.nLo < xs.nHi));
    sources.forEach((xs, k) => {
      const relu = a.relu && xs.cHi === Cx;
      prog.dispatch(
        // Unused bindings (no bias, identity routing) are bound to the weights.
        { X: xs.range, Wt: packed ?? a.w, Bias: a.bias ?? a.w, T: a.table ?? a.w, O: k === 0 ? os.range : partial!, Found: found },
        {
          Hin, Win, Hout, Wout, cin: xs.cHi - xs.cLo, pad: a.pad, nv: l.nv, routed: a.table ? 1 : 0,
          srcLo: xs.nLo, srcHi: xs.nHi, xBase: xs.base, xSample: Cx * Hin * Win,
          oLo: os.nLo, oBase: k === 0 ? os.base : 0, oSample: Co * Hout * Wout, coLo: os.cLo,
          coCount, coBlocks, wE: l.wE, wO: l.wO, wI: l.wI, ciLo: xs.cLo, gather: l.gather ? 1 : 0,
          addBias: a.bias && xs.cLo === 0 ? 1 : 0, relu: relu && k === 0 ? 1 : 0, alwaysWrite: k === 0 ? 1 : 0, bE: l.bE, cinAll: Cx, blocksAll,
        },
        [ceilDiv(Wout, PX * WG_X), ceilDiv(Hout, WG_Y), z],
        l.flip ? 'conv2d_grad_input' : 'conv2d',
      );
      if (k > 0) addInto(os, partial!, found, relu);
    });
  }
  found.dispose();
  partial?.dispose();
  packed?.dispose();
}

const packProgram = new Program({
  name: 'conv2d_pack_weights',
  inputs: { W: 'f32' },
  outputs: { Pk: 'f32' },
  uniforms: { n: 'u32', co: 'u32', ci: 'u32', kk: 'u32', cob: 'u32', cb: 'u32', wE: 'u32', wO: 'u32', wI: 'u32' },
  workgroupSize: 64,
  flat: true,
  body: /* wgsl */ `
  if (i >= p.n) { return; }
  let c = i % p.cob;
  let t = (i / p.cob) % p.kk;
  let ci = (i / (p.cob * p.kk)) % p.ci;
  let r = i / (p.cob * p.kk * p.ci);
  let cb = r % p.cb;
  let e = r / p.cb;
  let co = cb * p.cob + c;
  var v = 0.0;
  if (co < p.co) { v = W[e * p.wE + co * p.wO + ci * p.wI + t]; }
  Pk[i] = v;`,
});

/**
 * Weights rearranged to (E, output-channel blocks, input channels, K², COB), zero-padded past the last output
 * channel: one input channel's taps of a block are K²·COB/4 consecutive vec4s, so 8 lanes load them with a few
 * 16-byte loads (lavapipe: one load per lane whatever its width) instead of K²·COB/8 scalar loads each.
 */
function packWeights(w: Tensor, l: Layout, co: number, ci: number, cob: number): Tensor {
  const kk = l.K * l.K;
  const cb = ceilDiv(co, cob);
  const n = l.experts * cb * ci * kk * cob;
  const out = Tensor.empty([n]);
  packProgram.dispatchFlat(n, { W: w, Pk: out }, { n, co, ci, kk, cob, cb, wE: l.wE, wO: l.wO, wI: l.wI });
  return out;
}
