/**
 * Differentiable gating of a mixture of experts, as the PyTorch MoE layer (davidmrau/mixture-of-experts) that
 * MoE-Fusion uses: the gate's linear map, the noisy top-k gate with its load-balancing loss, and the routing
 * table that lets the chosen experts run on the GPU without reading the routing back.
 */
import { Tensor } from '../tensor/tensor.ts';
import { engine, tidy } from '../tensor/engine.ts';
import { once, record, recordOutputs } from '../autograd/tape.ts';
import { gateLinearKernel, gateLinearXGradKernel, gateLinearWGradKernel } from '../kernels/gate-linear.ts';
import {
  noisyTopKGateKernel,
  noisyTopKGateGradKernel,
  routingTableKernel,
  MAX_EXPERTS,
  type GateConfig,
  type RoutingMode,
} from '../kernels/gating.ts';

/** x (B,D) · w (D,E) → (B,E), for a huge D and small B and E (split-K). */
export function gateLinear(x: Tensor, w: Tensor): Tensor {
  const out = gateLinearKernel(x, w);
  return record('gate_linear', [x, w], out, {
    saved: { x, w },
    grads: [(dy, { w }) => gateLinearXGradKernel(dy, w), (dy, { x }) => gateLinearWGradKernel(x, dy)],
  });
}

export interface NoisyTopKOptions {
  k: number;
  /** Training: noisy logits and the smooth load. */
  train: boolean;
  /** N(0,1) samples (B,E) for the noise, required in training: the caller draws them (a seeded generator whose state a checkpoint saves). */
  noise?: Tensor;
  /** Multiplier of the load-balancing loss (0.01 for MoE-Fusion's local mixtures, 0.02 for the global one). */
  lossCoef: number;
}

export interface NoisyTopKResult {
  /** (B,E): softmax over each row's top k logits, zero elsewhere. */
  gates: Tensor;
  /** (B,k) u32: the chosen experts in descending logit order (ties: the lower index first). */
  topIndices: Tensor;
  /** (E): Σ_b P(expert in the top k) while training with noise and k < E, else the count of nonzero gates. */
  load: Tensor;
  /** (E): Σ_b gates. */
  importance: Tensor;
  /** Scalar: lossCoef·(cv²(importance) + cv²(load)). */
  auxLoss: Tensor;
}

/** Copies tensors one after another into a new flat tensor (GPU copies, no read-back). */
function stack(parts: Tensor[]): Tensor {
  const out = Tensor.empty([parts.reduce((n, t) => n + t.size, 0)]);
  let offset = 0;
  for (const t of parts) {
    if (t.size) engine().rt.copy(t.buffer, 0, out.buffer, offset * 4, t.bytes);
    offset += t.size;
  }
  return out;
}

/** Copies `count` elements of `src` from `offset` into a new tensor of `shape`. */
function slice(src: Tensor, offset: number, shape: readonly number[]): Tensor {
  const out = Tensor.empty(shape);
  if (out.size) engine().rt.copy(src.buffer, offset * 4, out.buffer, 0, out.bytes);
  return out;
}

/**
 * Noisy top-k gating (Shazeer et al. 2017) exactly as the reference's `noisy_top_k_gating` and the loss of its
 * `forward`: clean = x·wGate; training: logits = clean + ε·(softplus(x·wNoise) + 0.01), else logits = clean;
 * gates = softmax of the top k logits. Differentiable to x, wGate and wNoise through the gates, the load and
 * the aux loss (the top-k choice itself is piecewise constant). Nothing is read back to the CPU.
 */
export function noisyTopKGate(x: Tensor, wGate: Tensor, wNoise: Tensor, opts: NoisyTopKOptions): NoisyTopKResult {
  const [B] = x.shape;
  const E = wGate.shape[1];
  const { k, train, lossCoef } = opts;
  if (!Number.isInteger(k) || k < 1 || k > E) throw new Error(`noisyTopKGate: k must be in 1..${E}, got ${k}`);
  if (E > MAX_EXPERTS) throw new Error(`noisyTopKGate: at most ${MAX_EXPERTS} experts, got ${E}`);
  if (wNoise.shape.join() !== wGate.shape.join()) throw new Error(`noisyTopKGate: wNoise [${wNoise.shape}] differs from wGate [${wGate.shape}]`);
  if (train && !opts.noise) throw new Error(`noisyTopKGate: training needs the noise (${B}, ${E}) from the caller`);
  if (opts.noise && opts.noise.shape.join() !== [B, E].join())
    throw new Error(`noisyTopKGate: noise must be [${B}, ${E}], got [${opts.noise.shape}]`);
  const config: GateConfig = { experts: E, k, train };

  // tidy frees the temporaries (the logits, the stacked state, the statistics) unless the graph saved them.
  return tidy(() => {
    const clean = gateLinear(x, wGate);
    const inputs = [clean];
    let state: Tensor;
    if (train && opts.noise) {
      // (training without noise was refused above)
      const raw = gateLinear(x, wNoise);
      inputs.push(raw);
      state = stack([clean, raw, opts.noise]);
    } else state = stack([clean]);

    const fwd = noisyTopKGateKernel(state, B, config, lossCoef);
    const load = slice(fwd.stats, 0, [E]);
    const importance = slice(fwd.stats, E, [E]);
    const auxLoss = slice(fwd.stats, 2 * E, []);

    recordOutputs('noisy_top_k_gate', inputs, [fwd.gates, load, importance, auxLoss], {
      saved: { state, gates: fwd.gates, rank: fwd.rank, stats: fwd.stats },
      // One kernel gives the gradients of the clean and the noisy logits, one after the other.
      shared: ([dGates, dLoad, dImp, dAux], s) =>
        once(() => {
          const dG = dGates ?? Tensor.zeros([B, E]);
          const dStats = Tensor.zeros([2 * E + 1]);
          const rt = engine().rt;
          if (dLoad) rt.copy(dLoad.buffer, 0, dStats.buffer, 0, 4 * E);
          if (dImp) rt.copy(dImp.buffer, 0, dStats.buffer, 4 * E, 4 * E);
          if (dAux) rt.copy(dAux.buffer, 0, dStats.buffer, 8 * E, 4);
          return noisyTopKGateGradKernel(s.state, s, dG, dStats, B, config, lossCoef);
        }),
      grads: [(d) => slice(d(), 0, [B, E]), ...(train ? [(d: () => Tensor) => slice(d(), B * E, [B, E])] : [])],
    });
    return { gates: fwd.gates, topIndices: fwd.topIndices, load, importance, auxLoss };
  });
}

export interface RoutingOptions {
  /**
   * Which input sample routed sample n = b·k + s reads: 'sample' (default) b; 'expertGroup' group(e)·B + b, the
   * experts split into `groups` equal consecutive groups that read different inputs stacked along the batch
   * (MoE-Fusion: experts 0-1 the visible features, 2-3 the infrared ones); 'self' n itself (later layers of
   * routed experts, whose input is the previous routed output).
   */
  inputOf?: RoutingMode;
  groups?: number;
}

/**
 * The routing table (B·k, 2) u32 of rows [input sample, expert], for output sample n = b·k + s, from the top
 * indices (B,k) of noisyTopKGate over `experts` experts. It feeds routed convolutions, so the chosen experts run
 * without a read-back.
 */
export function routingTable(topIndices: Tensor, experts: number, opts: RoutingOptions = {}): Tensor {
  if (topIndices.rank !== 2 || topIndices.dtype !== 'u32') throw new Error(`routingTable: needs u32 top indices (B,k), got ${topIndices}`);
  const E = experts;
  if (!Number.isInteger(E) || E < topIndices.shape[1]) throw new Error(`routingTable: ${E} experts cannot hold the top ${topIndices.shape[1]}`);
  const mode = opts.inputOf ?? 'sample';
  let perGroup = 1;
  if (mode === 'expertGroup') {
    const groups = opts.groups ?? 1;
    if (!Number.isInteger(groups) || groups < 1 || E % groups !== 0) throw new Error(`routingTable: ${E} experts do not split into ${groups} equal groups`);
    perGroup = E / groups;
  }
  return routingTableKernel(topIndices, mode, perGroup);
}
