/** Differentiable fused scaled dot-product attention (see src/kernels/attention.ts). */
import type { Tensor } from '../tensor/tensor.ts';
import { once, record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import { attentionKernel, attentionDeltaKernel, attentionDkvKernel, attentionDqKernel, type AttentionConfig } from '../kernels/attention.ts';
import type { KernelVariant } from '../kernels/variant.ts';

export interface AttentionOptions {
  /** Additive float mask (0 where allowed, −inf or −1e9 where not), (Lq, Lk) or broadcastable to (B, Hh, Lq, Lk). Not differentiated. */
  mask?: Tensor;
  /** Key j is hidden from query i when j > i (top-left aligned, as PyTorch's is_causal). */
  causal?: boolean;
  /** Multiplies q·kᵀ (default 1/√D). */
  scale?: number;
  /** The kernel variant of the forward and the backward (default: the engine's). */
  variant?: KernelVariant;
}

/** softmax(q·kᵀ·scale + mask) · v for q (B, Hh, Lq, D), k (B, Hh, Lk, D), v (B, Hh, Lk, Dv) → (B, Hh, Lq, Dv). */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const cfg: AttentionConfig = { mask: opts.mask ?? null, causal: opts.causal ?? false, scale: opts.scale, variant: opts.variant };
  // tidy frees lse unless the graph saved it.
  return tidy(() => {
    const { out, lse } = attentionKernel(q, k, v, cfg);
    return record('attention', [q, k, v], out, {
      saved: { q, k, v, out, lse, mask: cfg.mask ?? null },
      shared: (dy, s) => {
        const c = { ...cfg, mask: s.mask };
        const delta = attentionDeltaKernel(s.out, dy);
        return { dq: () => attentionDqKernel(s.q, s.k, s.v, s.lse, dy, delta, c), dkv: once(() => attentionDkvKernel(s.q, s.k, s.v, s.lse, dy, delta, c)) };
      },
      grads: [({ dq }) => dq(), ({ dkv }) => dkv().dk, ({ dkv }) => dkv().dv],
    });
  });
}
