/**
 * Adam / AdamW as torch.optim.Adam and torch.optim.AdamW (no amsgrad), updating parameters in place on the GPU,
 * and gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (2-norm), without reading anything back.
 */
import { Tensor, sameShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/engine.ts';
import { adamKernel, clipByNormKernel, type AdamScalars } from '../kernels/optimizer.ts';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** true: decoupled weight decay (AdamW); false: L2 penalty added to the gradient (Adam). */
  decoupled?: boolean;
}

/** What a checkpoint stores: the step count and both moments of every parameter, in parameter order. */
export interface AdamState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  /** Learning rate, settable between steps (schedules). */
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  /** Steps taken so far (one count for all parameters). */
  stepCount = 0;
  private readonly params: Tensor[];
  /** First and second moments, allocated (zeros) at a parameter's first update. */
  private m: (Tensor | null)[];
  private v: (Tensor | null)[];

  constructor(params: Tensor[], opts: AdamOptions = {}) {
    this.params = [...params];
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decoupled = opts.decoupled ?? false;
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new Error(`Adam: betas [${this.betas}] must lie in [0, 1)`);
    if (new Set(this.params).size !== this.params.length) throw new Error('Adam: a parameter appears twice');
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
  }

  private scalars(): AdamScalars {
    const [beta1, beta2] = this.betas;
    const t = this.stepCount;
    const wd = this.weightDecay;
    return {
      beta1,
      beta2,
      oneMinusBeta1: 1 - beta1,
      oneMinusBeta2: 1 - beta2,
      eps: this.eps,
      coupledDecay: this.decoupled ? 0 : wd,
      paramDecay: this.decoupled ? 1 - this.lr * wd : 1,
      stepSize: this.lr / (1 - beta1 ** t),
      bc2Sqrt: Math.sqrt(1 - beta2 ** t),
    };
  }

  private moments(i: number): [Tensor, Tensor] {
    const shape = this.params[i].shape;
    this.m[i] ??= keep(Tensor.zeros(shape));
    this.v[i] ??= keep(Tensor.zeros(shape));
    return [this.m[i], this.v[i]];
  }

  /** Updates every parameter that has a gradient (parameters without one are left as they are). */
  step(): void {
    this.stepCount++;
    const s = this.scalars();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      if (!sameShape(p.grad.shape, p.shape)) throw new Error(`Adam: gradient [${p.grad.shape}] for parameter ${p} [${p.shape}]`);
      const [m, v] = this.moments(i);
      adamKernel(p, p.grad, m, v, s);
    });
  }

  /** Drops every gradient (like PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Reads the moments back (zeros for parameters not updated yet). */
  async exportState(): Promise<AdamState> {
    const read = (t: Tensor | null, i: number) => (t ? t.data() : Promise.resolve(new Float32Array(this.params[i].size)));
    const [m, v] = await Promise.all([Promise.all(this.m.map(read)), Promise.all(this.v.map(read))]);
    return { step: this.stepCount, m, v };
  }

  /** Restores a state from exportState() for the same parameters in the same order. */
  importState(state: AdamState): void {
    const n = this.params.length;
    if (state.m.length !== n || state.v.length !== n)
      throw new Error(`Adam.importState: ${state.m.length} first and ${state.v.length} second moments for ${n} parameters`);
    this.params.forEach((p, i) => {
      for (const [what, data] of [['m', state.m[i]], ['v', state.v[i]]] as const)
        if (data.length !== p.size) throw new Error(`Adam.importState: ${what}[${i}] has ${data.length} values, parameter ${p} has ${p.size}`);
    });
    this.disposeMoments();
    this.m = state.m.map((d, i) => keep(Tensor.fromArray(d, this.params[i].shape)));
    this.v = state.v.map((d, i) => keep(Tensor.fromArray(d, this.params[i].shape)));
    this.stepCount = state.step;
  }

  private disposeMoments(): void {
    for (const t of [...this.m, ...this.v]) t?.dispose();
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
  }

  /** Frees the moments' GPU memory. */
  dispose(): void {
    this.disposeMoments();
  }
}

/**
 * Scales all gradients in place so that their total 2-norm is at most maxNorm (factor maxNorm/(norm+1e-6), applied
 * only when below 1). Returns the total norm before clipping as a scalar tensor; nothing is read back.
 * Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const grads = params.flatMap((p) => (p.grad ? [p.grad] : []));
  return clipByNormKernel(grads, maxNorm);
}
