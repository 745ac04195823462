/** Differentiable statistics built from sum and mean. */
import type { Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/engine.ts';
import { mean, sum } from './reduce.ts';
import { mul, scale, sub } from './arithmetic.ts';

/** Variance over `axes` (all by default), unbiased (divides by n − 1) unless told otherwise, as torch.var. */
export function variance(x: Tensor, axes?: number | readonly number[], unbiased = true, keepDims = false): Tensor {
  const list = axes === undefined ? [...x.shape.keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const count = list.reduce((n, a) => n * x.shape[a < 0 ? a + x.rank : a], 1);
  return tidy(() => {
    const centred = sub(x, mean(x, list, true));
    return scale(sum(mul(centred, centred), list, keepDims), 1 / (unbiased ? count - 1 : count));
  });
}
