/** Float64 references of the optimizer kernels (src/kernels/optimizer.ts): the Adam/AdamW update and norm clipping. */

export interface RefAdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  /** true: AdamW (decoupled weight decay); false: Adam (L2 penalty added to the gradient). */
  decoupled: boolean;
}

/** torch.optim.Adam / AdamW (amsgrad off) for one tensor, in float64. */
export class ReferenceAdam {
  m: Float64Array;
  v: Float64Array;
  step = 0;
  constructor(
    public x: Float64Array,
    readonly o: RefAdamOptions,
  ) {
    this.m = new Float64Array(x.length);
    this.v = new Float64Array(x.length);
  }
  update(grad: ArrayLike<number>, lr: number): void {
    const [b1, b2] = this.o.betas;
    const wd = this.o.weightDecay;
    this.step++;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    for (let i = 0; i < this.x.length; i++) {
      let g = grad[i];
      if (this.o.decoupled) this.x[i] *= 1 - lr * wd;
      else g += wd * this.x[i];
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      const denom = Math.sqrt(this.v[i]) / Math.sqrt(bc2) + this.o.eps;
      this.x[i] -= (lr / bc1) * (this.m[i] / denom);
    }
  }
}

/**
 * torch.nn.utils.clip_grad_norm_ in float64: the total 2-norm of all gradients and the factor
 * min(1, maxNorm / (norm + 1e-6)) every gradient is scaled by.
 */
export function refClipGradNorm(grads: ArrayLike<number>[], maxNorm: number): { norm: number; factor: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  return { norm, factor: Math.min(1, maxNorm / (norm + 1e-6)) };
}
