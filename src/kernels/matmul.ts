/**
 * Batched matmul C[b] = op(A[b]) · op(B[b]) with optional transposes (expressed as strides) and batch
 * broadcasting.
 *
 * With subgroups (the common case): a workgroup owns RM rows of C and WX·CN columns, one lane CN columns of all
 * RM rows. A is read in chunks of 8 along K: lane l loads A[m0 + i][k0 + l] for the RM rows, and
 * subgroupBroadcast hands each value to the lanes that need it, so every A value is loaded once per subgroup
 * rather than once per lane; B rows are read as vec4s when B is untransposed and N % 4 == 0. On lavapipe, where
 * each lane's load costs about as much as 8 multiply-adds, this cuts the loads per multiply-add from 1/2 to 1/16.
 * Every lane of a workgroup shares its rows, so the broadcast is right for any subgroup size ≥ 8.
 * Without subgroups: each invocation computes a 4×4 block of C from its own loads.
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { LimitError } from '../runtime/errors.ts';
import { ceilDiv, Program, type UniformType, program, type ProgramSpec } from './program.ts';
import { subgroupSize, type KernelVariant } from './variant.ts';

const TILE = 32; // fallback: 8×8 invocations × 4×4 outputs

/** Sizes, element strides of A (m, k) and B (k, n), and batch strides (0: shared by every batch). */
const UNIFORMS: Record<string, UniformType> = {
  M: 'u32', N: 'u32', K: 'u32', batch: 'u32', sam: 'u32', sak: 'u32', sbk: 'u32', sbn: 'u32', sab: 'u32', sbb: 'u32',
};

const fallbackProgram = new Program({
  name: 'matmul',
  inputs: { A: 'f32', B: 'f32' },
  outputs: { C: 'f32' },
  uniforms: UNIFORMS,
  workgroupSize: [8, 8],
  body: /* wgsl */ `
  let b = gid.z;
  let m0 = gid.y * 4u;
  let n0 = gid.x * 4u;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let aBase = b * p.sab;
  let bBase = b * p.sbb;
  var acc: array<vec4f, 4>;
  for (var k = 0u; k < p.K; k++) {
    var bv = vec4f(0.0);
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < p.N) { bv[j] = B[bBase + k * p.sbk + (n0 + j) * p.sbn]; }
    }
    for (var i = 0u; i < 4u; i++) {
      if (m0 + i < p.M) { acc[i] += A[aBase + (m0 + i) * p.sam + k * p.sak] * bv; }
    }
  }
  let cBase = b * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (m0 + i < p.M && n0 + j < p.N) { C[cBase + (m0 + i) * p.N + n0 + j] = acc[i][j]; }
    }
  }`,
});

// Rows of C per workgroup and columns per lane of the subgroup kernel: 8 × 4 was the fastest block on lavapipe
// (larger ones keep more accumulators than fit the registers).
const RM = 8;
const CN = 4;

/** The subgroup kernel; `v4`: B is bound as vec4s and its rows read as such (B untransposed, N % 4 == 0). */
function subgroupProgram(WX: number, v4: boolean): Program {
  return program(`matmul subgroups ${WX} ${v4}`, () => subgroupProgramSpec(WX, v4));
}

function subgroupProgramSpec(WX: number, v4: boolean): ProgramSpec {
  const aLoads = Array.from({ length: RM }, (_, i) => `let a${i} = select(0.0, A[aBase + rows[${i}] * p.sam + kc * p.sak], kOk);`);
  const chunk: string[] = [];
  for (let kk = 0; kk < 8; kk++) {
    const kRow = `min(k0 + ${kk}u, p.K - 1u)`;
    const bLoad = v4
      ? `let b${kk} = B[(bBase + ${kRow} * p.sbk) / 4u + nq];`
      : `let br${kk} = bBase + ${kRow} * p.sbk; let b${kk} = vec4f(${Array.from({ length: CN }, (_, j) => `B[br${kk} + cols[${j}] * p.sbn]`).join(', ')});`;
    const fmas = Array.from({ length: RM }, (_, i) => `acc${i} += subgroupBroadcast(a${i}, ${kk}u) * b${kk};`);
    chunk.push(`${bLoad} ${fmas.join(' ')}`);
  }
  const stores = Array.from({ length: RM }, (_, i) => `if (m0 + ${i}u < p.M) { for (var j = 0u; j < ${CN}u; j++) { if (n0 + j < p.N) { C[cBase + (m0 + ${i}u) * p.N + n0 + j] = acc${i}[j]; } } }`);
  return {
    name: 'matmul',
    inputs: { A: 'f32', B: v4 ? 'vec4f' : 'f32' },
    outputs: { C: 'f32' },
    uniforms: UNIFORMS,
    workgroupSize: WX,
    enables: ['subgroups'],
    body: /* wgsl */ `
  let b = gid.z;
  let m0 = wid.y * ${RM}u;
  let n0 = gid.x * ${CN}u;
  // Rows and columns past the edge are clamped (their results are not stored) so that every lane runs the same
  // loop: the broadcasts need uniform control flow.
  var rows: array<u32, ${RM}>;
  for (var i = 0u; i < ${RM}u; i++) { rows[i] = min(m0 + i, p.M - 1u); }
  ${v4 ? 'let nq = min(n0, p.N - 4u) / 4u;' : `var cols: array<u32, ${CN}>;
  for (var j = 0u; j < ${CN}u; j++) { cols[j] = min(n0 + j, p.N - 1u); }`}
  let aBase = b * p.sab;
  let bBase = b * p.sbb;
  ${Array.from({ length: RM }, (_, i) => `var acc${i} = vec4f(0.0);`).join(' ')}
  for (var k0 = 0u; k0 < p.K; k0 += 8u) {
    let kc = min(k0 + sid % 8u, p.K - 1u);
    let kOk = k0 + sid % 8u < p.K;
    ${aLoads.join('\n    ')}
    ${chunk.join('\n    ')}
  }
  let cBase = b * p.M * p.N;
  ${stores.join('\n  ')}`,
  };
}

/**
 * a: [..., M, K] (or [..., K, M] with transA), b: [..., K, N] (or [..., N, K] with transB).
 * Batch dimensions must match, or one side has none (it is shared by every batch).
 */
export function matmulKernel(a: Tensor, b: Tensor, transA = false, transB = false, variant?: KernelVariant): Tensor {
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul needs rank ≥ 2, got [${a.shape}] and [${b.shape}]`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== Kb) throw new Error(`matmul: inner sizes differ: [${a.shape}]${transA ? 'ᵀ' : ''} · [${b.shape}]${transB ? 'ᵀ' : ''}`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batchShape = aBatch.length ? aBatch : bBatch;
  const batch = batchShape.reduce((n, d) => n * d, 1);
  if (aBatch.length && bBatch.length && aBatch.join() !== bBatch.join())
    throw new Error(`matmul: batch shapes differ: [${a.shape}] and [${b.shape}]`);
  const rt = engine().rt;
  if (Math.max(a.bytes, b.bytes, batch * M * N * 4) > rt.maxBinding) throw new LimitError('matmul operand exceeds one storage binding');
  if (batch > rt.limits.maxComputeWorkgroupsPerDimension) throw new LimitError('matmul: too many batches');
  const out = Tensor.empty([...batchShape, M, N]);
  const uniforms = {
    M, N, K, batch,
    sam: transA ? 1 : K, sak: transA ? M : 1,
    sbk: transB ? 1 : N, sbn: transB ? K : 1,
    sab: aBatch.length ? M * K : 0, sbb: bBatch.length ? K * N : 0,
  };
  const sub = subgroupSize(variant);
  if (sub > 0) {
    // Lanes along N: enough for the columns, at least one subgroup, at most 64.
    let WX = Math.max(8, sub);
    while (WX < 64 && WX * CN < N) WX *= 2;
    const v4 = !transB && N % 4 === 0;
    subgroupProgram(WX, v4).dispatch({ A: a, B: b, C: out }, uniforms, [ceilDiv(N, WX * CN), ceilDiv(M, RM), batch]);
  } else {
    fallbackProgram.dispatch({ A: a, B: b, C: out }, uniforms, [ceilDiv(N, TILE), ceilDiv(M, TILE), batch]);
  }
  return out;
}
