/** Differentiable fused scaled dot-product attention (see src/kernels/attention.ts). */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import { attentionKernel, attentionGradKernel, type AttentionConfig } from '../kernels/attention.ts';

export interface AttentionOptions {
  /** Additive float mask (0 where allowed, −inf or −1e9 where not), (Lq, Lk) or broadcastable to (B, Hh, Lq, Lk). Not differentiated. */
  mask?: Tensor;
  /** Key j is hidden from query i when j > i (top-left aligned, as PyTorch's is_causal). */
  causal?: boolean;
  /** Multiplies q·kᵀ (default 1/√D). */
  scale?: number;
}

/** softmax(q·kᵀ·scale + mask) · v for q (B, Hh, Lq, D), k (B, Hh, Lk, D), v (B, Hh, Lk, Dv) → (B, Hh, Lq, Dv). */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const cfg: AttentionConfig = { mask: opts.mask ?? null, causal: opts.causal ?? false, scale: opts.scale };
  // tidy frees lse unless the graph saved it.
  return tidy(() => {
    const { out, lse } = attentionKernel(q, k, v, cfg);
    const saved = [q, k, v, out, lse, ...(cfg.mask ? [cfg.mask] : [])];
    return record(
      'attention',
      [q, k, v],
      out,
      ([g]) => {
        const { dq, dk, dv } = attentionGradKernel(q, k, v, out, lse, g!, cfg);
        return [dq, dk, dv];
      },
      saved,
    );
  });
}
