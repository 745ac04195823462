/**
 * Batched matmul C[b] = op(A[b]) · op(B[b]) with optional transposes (expressed as strides) and batch
 * broadcasting. Register-blocked: each invocation computes a 4×4 block of C.
 */
import { engine } from '../graph/engine.ts';
import { Tensor } from '../graph/tensor.ts';
import { Params } from '../runtime/params.ts';
import { LimitError } from '../runtime/errors.ts';
import { ceilDiv } from './wgsl.ts';

const TILE = 32; // 8×8 invocations × 4×4 outputs

const CODE = /* wgsl */ `
struct P { M: u32, N: u32, K: u32, batch: u32,
  sam: u32, sak: u32, sbk: u32, sbn: u32,
  sab: u32, sbb: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
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
  }
}`;

/**
 * a: [..., M, K] (or [..., K, M] with transA), b: [..., K, N] (or [..., N, K] with transB).
 * Batch dimensions must match, or one side has none (it is shared by every batch).
 */
export function matmulKernel(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
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
  const params = new Params().u32(
    M, N, K, batch,
    transA ? 1 : K, transA ? M : 1, // A strides (m, k)
    transB ? 1 : N, transB ? K : 1, // B strides (k, n)
    aBatch.length ? M * K : 0, bBatch.length ? K * N : 0, 0, 0,
  ).bytes;
  rt.dispatch({ label: 'matmul', code: CODE, buffers: [a.buffer, b.buffer, out.buffer], params, workgroups: [ceilDiv(N, TILE), ceilDiv(M, TILE), batch] });
  return out;
}
