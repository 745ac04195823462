/**
 * The gate's linear map (B,D)·(D,E) for a huge D (614,400 or 768,000 in MoE-Fusion), a tiny E (4) and B (1-4):
 * a split-K reduction. Each workgroup sums one slice of D for a block of batch rows (so every weight is read
 * once per block, not once per row), each invocation writing one partial per output; a second pass sums them.
 * The backward products are elementwise-cheap (E terms per output element) and get dedicated kernels.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { sumKernel } from './reduce.ts';
import { MAX_EXPERTS } from './gating.ts';
import { bindableElements, ceilDiv, Program, program, type ProgramSpec } from './program.ts';

const WG = 64;
/** Elements of D per workgroup at least: 16 loads per invocation keeps the partials few. */
const MIN_SLICE = WG * 16;
const MAX_PARTS = 4096;
/** Invocations per workgroup of the backward kernels. */
const GRAD_WG = 256;

/** Batch rows per workgroup: as many as keep the per-invocation accumulators at 64 values. */
function rowsPerWorkgroup(E: number): number {
  return Math.max(1, Math.min(4, Math.floor(64 / E)));
}

function forwardProgram(E: number, rows: number): Program {
  return program(`gate_linear ${E} ${rows}`, () => forwardProgramSpec(E, rows));
}

function forwardProgramSpec(E: number, rows: number): ProgramSpec {
  const nv = rows * E;
  return {
    name: 'gate_linear',
    inputs: { X: 'f32', W: 'f32' },
    outputs: { O: 'f32' },
    uniforms: { B: 'u32', D: 'u32', slice: 'u32', parts: 'u32' },
    workgroupSize: WG,
    header: /* wgsl */ `
const E = ${E}u;
const ROWS = ${rows}u;
const NV = ${nv}u;`,
    // Every invocation writes its own partial sums (no workgroup reduction: on lavapipe a loop of barriers took
    // seconds to compile, against milliseconds for the second pass over WG times more partials).
    body: /* wgsl */ `let part = wid.x;
  let b0 = wid.y * ROWS;
  let d0 = part * p.slice;
  let d1 = min(p.D, d0 + p.slice);
  var acc: array<f32, NV>;
  for (var d = d0 + li; d < d1; d += ${WG}u) {
    var wv: array<f32, E>;
    for (var e = 0u; e < E; e++) { wv[e] = W[d * E + e]; }
    for (var r = 0u; r < ROWS; r++) {
      if (b0 + r < p.B) {
        let xv = X[(b0 + r) * p.D + d];
        for (var e = 0u; e < E; e++) { acc[r * E + e] += xv * wv[e]; }
      }
    }
  }
  for (var v = 0u; v < NV; v++) {
    let b = b0 + v / E;
    if (b < p.B) { O[((b * E + v % E) * p.parts + part) * ${WG}u + li] = acc[v]; }
  }`,
  };
}

function checkOperands(x: Tensor, w: Tensor): [number, number, number] {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[0])
    throw new Error(`gateLinear: needs x (B,D) and w (D,E), got [${x.shape}] and [${w.shape}]`);
  const [B, D] = x.shape;
  const E = w.shape[1];
  if (E > MAX_EXPERTS) throw new Error(`gateLinear: at most ${MAX_EXPERTS} experts, got ${E}`);
  const max = engine().rt.maxBinding;
  if (x.bytes > max || w.bytes > max) throw new LimitError(`gateLinear: x [${x.shape}] or w [${w.shape}] exceeds one storage binding`);
  return [B, D, E];
}

/** x (B,D) · w (D,E) → (B,E). */
export function gateLinearKernel(x: Tensor, w: Tensor): Tensor {
  const [B, D, E] = checkOperands(x, w);
  if (B === 0 || E === 0 || D === 0) return Tensor.zeros([B, E]);
  // The partials (B·E·WG per part) must fit one binding too: more than 16 experts and rows can outgrow x and w.
  const parts = Math.max(1, Math.min(MAX_PARTS, Math.floor(bindableElements() / (B * E * WG)), Math.floor(D / MIN_SLICE)));
  const slice = ceilDiv(ceilDiv(D, parts), WG) * WG;
  const used = ceilDiv(D, slice);
  const rows = rowsPerWorkgroup(E);
  const partial = Tensor.empty([B, E, used * WG]);
  forwardProgram(E, rows).dispatch({ X: x, W: w, O: partial }, { B, D, slice, parts: used }, [used, ceilDiv(B, rows), 1]);
  const out = sumKernel(partial, [2]);
  partial.dispose();
  return out;
}

// Backward: one invocation per d (the flat index), the E weights (or the E gradient sums) of a row of w in registers.
function gradProgram(name: string, E: number, inputs: ProgramSpec['inputs'], body: string): Program {
  return program(`${name} ${E}`, () => ({
    name,
    inputs,
    outputs: { O: 'f32' },
    uniforms: { B: 'u32', D: 'u32' },
    workgroupSize: GRAD_WG,
    flat: true,
    header: `const E = ${E}u;`,
    body: `let d = i;\n  if (d >= p.D) { return; }\n  ${body}`,
  }));
}

const gradXProgram = (E: number) =>
  gradProgram('gate_linear_grad_x', E, { G: 'f32', W: 'f32' }, /* wgsl */ `var wv: array<f32, E>;
  for (var e = 0u; e < E; e++) { wv[e] = W[d * E + e]; }
  for (var b = 0u; b < p.B; b++) {
    var s = 0.0;
    for (var e = 0u; e < E; e++) { s += G[b * E + e] * wv[e]; }
    O[b * p.D + d] = s;
  }`);

const gradWProgram = (E: number) =>
  gradProgram('gate_linear_grad_w', E, { X: 'f32', G: 'f32' }, /* wgsl */ `var acc: array<f32, E>;
  for (var b = 0u; b < p.B; b++) {
    let xv = X[b * p.D + d];
    for (var e = 0u; e < E; e++) { acc[e] += xv * G[b * E + e]; }
  }
  for (var e = 0u; e < E; e++) { O[d * E + e] = acc[e]; }`);

/** dx = g · wᵀ: (B,E) and (D,E) → (B,D). */
export function gateLinearXGradKernel(g: Tensor, w: Tensor): Tensor {
  const [D, E] = w.shape;
  const B = g.shape[0];
  const out = Tensor.empty([B, D]);
  if (out.bytes > engine().rt.maxBinding) throw new LimitError(`gateLinear backward: dx [${B}, ${D}] exceeds one storage binding`);
  gradXProgram(E).dispatchFlat(D, { G: g, W: w, O: out }, { B, D });
  return out;
}

/** dw = xᵀ · g: (B,D) and (B,E) → (D,E). */
export function gateLinearWGradKernel(x: Tensor, g: Tensor): Tensor {
  const [B, D] = x.shape;
  const E = g.shape[1];
  const out = Tensor.empty([D, E]);
  gradWProgram(E).dispatchFlat(D, { X: x, G: g, O: out }, { B, D });
  return out;
}
