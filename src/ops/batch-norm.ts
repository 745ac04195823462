/** Differentiable 2-D batch normalisation with PyTorch's BatchNorm2d semantics. */
import type { Tensor } from '../tensor/tensor.ts';
import { once, record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import {
  batchNormApplyKernel,
  batchNormGradInputKernel,
  batchNormGradStatsKernel,
  batchNormStatsKernel,
  batchNormRunningStatsKernel,
} from '../kernels/batch-norm.ts';

/** Running statistics (C) each: state updated in place by training steps, not parameters (no gradient). */
export interface RunningStats {
  mean: Tensor;
  var: Tensor;
}

export interface BatchNormOptions {
  /** Batch statistics (and a running-statistics update) when true; the running statistics when false. */
  training: boolean;
  /** Weight of the batch in the running statistics' update (PyTorch's default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
}

function check(x: Tensor, gamma: Tensor, beta: Tensor, running: RunningStats, momentum: number, eps: number): void {
  if (x.rank !== 4) throw new Error(`batchNorm2d: expected (N, C, H, W), got [${x.shape.join(', ')}]`);
  const c = x.shape[1];
  const named: Array<[string, Tensor]> = [['gamma', gamma], ['beta', beta], ['running.mean', running.mean], ['running.var', running.var]];
  for (const [name, t] of named)
    if (t.size !== c || t.dtype !== 'f32') throw new Error(`batchNorm2d: ${name} [${t.shape.join(', ')}] must hold ${c} f32 values, one per channel`);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`batchNorm2d: momentum ${momentum} must lie in [0, 1]`);
  if (!(eps >= 0)) throw new Error(`batchNorm2d: eps ${eps} must be non-negative`);
}

/**
 * x (N, C, H, W) → γ·(x − mean)/√(var + eps) + β per channel.
 * Training: mean and biased variance of the batch over (N, H, W), and in place on the GPU (no read-back)
 * running ← (1 − momentum)·running + momentum·batch, where the running variance takes the unbiased batch variance
 * as PyTorch does, except that with N·H·W = 1 (PyTorch refuses that case) it takes the biased one, 0, instead of
 * dividing by zero. Eval: the running statistics. Gradients for x, gamma and beta in both modes (training: through
 * the batch statistics); none for the running statistics.
 */
export function batchNorm2d(x: Tensor, gamma: Tensor, beta: Tensor, running: RunningStats, opts: BatchNormOptions): Tensor {
  const { training, momentum = 0.1, eps = 1e-5 } = opts;
  check(x, gamma, beta, running, momentum, eps);
  const [n, , h, w] = x.shape;
  if (training && n * h * w === 0) throw new Error(`batchNorm2d: no values per channel to take batch statistics of in [${x.shape.join(', ')}]`);
  // tidy frees the statistics unless the graph saved them.
  return tidy(() => {
    const stats = training ? batchNormStatsKernel(x, running.mean, running.var, momentum, eps) : batchNormRunningStatsKernel(running.mean, running.var, eps);
    const out = batchNormApplyKernel(x, stats, gamma, beta);
    return record('batch_norm2d', [x, gamma, beta], out, {
      saved: { x, gamma, stats },
      // One reduction gives dγ, dβ and the coefficients that dx needs.
      shared: (dy, { x, gamma, stats }) => ({ dy, reduced: once(() => batchNormGradStatsKernel(dy, x, stats, gamma, training)) }),
      grads: [
        ({ dy, reduced }, { x }) => batchNormGradInputKernel(dy, x, reduced().coef),
        ({ reduced }) => reduced().dGamma,
        ({ reduced }) => reduced().dBeta,
      ],
    });
  });
}
