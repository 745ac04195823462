/**
 * The transformed weights of the Winograd convolution (conv2d-winograd.ts), U = G g Gᵀ per 3×3 kernel g, laid out
 * (E, α²/4, ciP, coP, 4): for each expert and point ξ, a matrix of input × output channels (zero-padded to the
 * multiply's steps), 4 points interleaved so that each invocation stores them as vec4s (see conv2d-winograd.ts). For the input gradient the kernels are flipped and input and output channels swap roles.
 *
 * They are kept per weights tensor and reused while the weights are unchanged: the runtime counts the writes into
 * every buffer (Runtime.writeVersion), so inference transforms each weight once, and training, whose optimizer
 * writes the weights every step, once per step (the forward and the input gradient each their own).
 */
import { engine, keep } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { Program, program, type ProgramSpec } from './program.ts';
import { linearMap, winogradMatrices } from './winograd-matrices.ts';

function transformProgram(m: number): Program {
  return program(`conv2d_winograd${m}_weights`, () => transformProgramSpec(m));
}

function transformProgramSpec(m: number): ProgramSpec {
  const { alpha: a, G } = winogradMatrices(m);
  const lines: string[] = [];
  // Flipped kernels (input gradient) read the taps backwards.
  for (let t = 0; t < 9; t++) lines.push(`let g${Math.floor(t / 3)}_${t % 3} = select(0.0, W[wb + select(${t}u, ${8 - t}u, p.flip == 1u)], ok);`);
  // T = G g (column by column), then U = T Gᵀ (row by row).
  for (let c = 0; c < 3; c++) lines.push(...linearMap(G, (k) => `g${k}_${c}`, (i) => `t${i}_${c}`, `c${c}_`));
  for (let r = 0; r < a; r++) lines.push(...linearMap(G, (k) => `t${r}_${k}`, (j) => `u${r}_${j}`, `r${r}_`));
  const stores: string[] = [];
  const u = (xi: number) => `u${Math.floor(xi / a)}_${xi % a}`;
  for (let q = 0; q < (a * a) / 4; q++) stores.push(`Ut[uo + ${q}u * plane] = vec4f(${[0, 1, 2, 3].map((k) => u(4 * q + k)).join(', ')});`);
  return {
    name: `conv2d_winograd${m}_weights`,
    inputs: { W: 'f32' },
    outputs: { Ut: 'vec4f' },
    uniforms: { n: 'u32', ci: 'u32', co: 'u32', ciP: 'u32', coP: 'u32', wE: 'u32', wO: 'u32', wI: 'u32', flip: 'u32' },
    workgroupSize: 64,
    flat: true,
    body: /* wgsl */ `
  if (i >= p.n) { return; }
  let co = i % p.coP;
  let ci = (i / p.coP) % p.ciP;
  let e = i / (p.coP * p.ciP);
  let ok = co < p.co && ci < p.ci;
  let wb = e * p.wE + min(co, p.co - 1u) * p.wO + min(ci, p.ci - 1u) * p.wI;
  ${lines.join('\n  ')}
  let plane = p.ciP * p.coP;
  let uo = (e * ${(a * a) / 4}u * p.ciP + ci) * p.coP + co;
  ${stores.join(' ')}`,
  };
}

/** How the raw weights (E, Cout, Cin, 3, 3) are read: element (conv output c, conv input i) of expert e at e·wE + c·wO + i·wI. */
export interface WeightLayout {
  /** Conv input and output channels (forward: Cin, Cout; input gradient: Cout, Cin). */
  ci: number;
  co: number;
  wE: number;
  wO: number;
  wI: number;
  /** Taps read backwards (input gradient). */
  flip: boolean;
}

/** Transforms w (E, Cout, Cin, 3, 3) into a new tensor (E, α²/4, ciP, coP, 4). */
export function transformWeights(w: Tensor, m: number, l: WeightLayout, ciP: number, coP: number): Tensor {
  const { alpha } = winogradMatrices(m);
  const E = w.shape[0];
  const prog = transformProgram(m);
  const u = Tensor.empty([E, (alpha * alpha) / 4, ciP, coP, 4]);
  const n = E * ciP * coP;
  prog.dispatchFlat(n, { W: w, Ut: u }, { n, ci: l.ci, co: l.co, ciP, coP, wE: l.wE, wO: l.wO, wI: l.wI, flip: l.flip ? 1 : 0 });
  return u;
}

interface Entry {
  version: number;
  u: Tensor;
}

/**
 * Transformed weights kept across calls, per runtime (each engine's tensors belong to its own buffer pool), by
 * weights buffer and transform; the least recently used go first.
 */
const keptByRuntime = new WeakMap<Runtime, Map<string, Entry>>();
function keptFor(rt: Runtime): Map<string, Entry> {
  let kept = keptByRuntime.get(rt);
  if (!kept) keptByRuntime.set(rt, (kept = new Map()));
  return kept;
}
const buffers = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
/** Bytes of transformed weights kept at most (MoE-Fusion's take about 20 MB with F(6×6)). */
const KEEP_BYTES = 96 << 20;

/**
 * The transformed weights of w, from the cache while w's buffer has not been written since they were made. The
 * returned tensor belongs to the caller (dispose it); the cache holds its own reference.
 */
export function cachedTransform(w: Tensor, m: number, l: WeightLayout, ciP: number, coP: number): Tensor {
  const rt = engine().rt;
  const kept = keptFor(rt);
  const buf = w.buffer;
  let id = buffers.get(buf);
  if (id === undefined) buffers.set(buf, (id = nextBufferId++));
  const key = `${id} ${m} ${ciP} ${coP} ${l.ci} ${l.co} ${l.wE} ${l.wO} ${l.wI} ${l.flip} ${w.shape[0]}`;
  const version = rt.writeVersion(buf);
  const hit = kept.get(key);
  if (hit && hit.version === version && !hit.u.disposed) {
    kept.delete(key);
    kept.set(key, hit); // most recently used last
    return hit.u.alias();
  }
  if (hit) {
    hit.u.dispose();
    kept.delete(key);
  }
  const u = keep(transformWeights(w, m, l, ciP, coP));
  kept.set(key, { version, u });
  let bytes = 0;
  for (const e of kept.values()) bytes += e.u.bytes;
  for (const [k, e] of kept) {
    if (bytes <= KEEP_BYTES || e.u === u) break;
    bytes -= e.u.bytes;
    e.u.dispose();
    kept.delete(k);
  }
  return u.alias();
}

/** Releases every transform kept for the current engine (tests, and before the engine shuts down). */
export function clearWeightTransforms(): void {
  const kept = keptFor(engine().rt);
  for (const e of kept.values()) e.u.dispose();
  kept.clear();
}
