/** Differentiable 2-D convolution (stride 1, zero padding, odd square kernels) and its routed (expert) form. */
import type { Tensor } from '../tensor/tensor.ts';
import { once, record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import { binaryMapKernel } from '../kernels/elementwise.ts';
import { conv2dKernel, conv2dInputGradKernel } from '../kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../kernels/conv2d-grad.ts';
import type { KernelVariant } from '../kernels/variant.ts';

export interface Conv2dOptions {
  /** Zero padding on every side; default (k − 1) / 2 keeps the image size. */
  padding?: number;
  /** Fuses a ReLU after the bias. */
  relu?: boolean;
  /** The kernel variant of the forward and the backward (default: the engine's). */
  variant?: KernelVariant;
}

/** x (N, Cin, H, W) ⋆ w (Cout, Cin, k, k) + b (Cout) → (N, Cout, H', W'). */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  if (w.rank !== 4) throw new Error(`conv2d: weights must be (Cout, Cin, k, k), got [${w.shape}]`);
  return convOp('conv2d', x, w, b, null, opts);
}

/**
 * Mixture-of-experts convolution: output sample n is conv(x[table[n][0]], w[table[n][1]]) + b[table[n][1]].
 * x (Nin, Cin, H, W), w (E, Cout, Cin, k, k), b (E, Cout) or null, table (Nv, 2) u32 on the GPU → (Nv, Cout, H', W').
 */
export function routedConv2d(x: Tensor, w: Tensor, b: Tensor | null, table: Tensor, opts: Conv2dOptions = {}): Tensor {
  if (w.rank !== 5) throw new Error(`routedConv2d: weights must be (E, Cout, Cin, k, k), got [${w.shape}]`);
  if (table.dtype !== 'u32' || table.rank !== 2 || table.shape[1] !== 2)
    throw new Error(`routedConv2d: the table must be (Nv, 2) u32, got [${table.shape}] ${table.dtype}`);
  return convOp('routed_conv2d', x, w, b, table, opts);
}

function convOp(name: string, x: Tensor, w: Tensor, b: Tensor | null, table: Tensor | null, opts: Conv2dOptions): Tensor {
  const [E, Cout, Cin, K, K2] = w.rank === 5 ? w.shape : [1, ...w.shape];
  if (x.rank !== 4 || x.shape[1] !== Cin || K !== K2)
    throw new Error(`${name}: input [${x.shape}] and weights [${w.shape}] do not match (need square kernels, equal Cin)`);
  if (b && b.size !== E * Cout) throw new Error(`${name}: bias [${b.shape}] does not match ${E}×${Cout}`);
  const pad = opts.padding ?? (K - 1) / 2;
  const { relu = false, variant } = opts;
  const out = tidy(() => conv2dKernel({ x, w: asExperts(w), bias: b, table, pad, relu, variant }));
  const n = x.shape[0];
  const [wShape, bShape] = [w.shape, b?.shape ?? []];
  return record(name, b ? [x, w, b] : [x, w], out, {
    saved: { x, w, table, out: relu ? out : null },
    shared: (dy, { x, table, out }) => {
      const gy = out ? binaryMapKernel('select(0.0, a, b > 0.0)', dy, out, 0, 'relu_grad') : dy;
      // One kernel gives the weights' and the bias's gradients.
      return { gy, weights: once(() => conv2dWeightGradKernel(x, gy, table, E, K, pad, variant)) };
    },
    grads: [
      ({ gy }, { w, table }) => conv2dInputGradKernel(gy, asExperts(w), table, pad, n, variant),
      ({ weights }) => weights().dw.view(wShape),
      ...(b ? [({ weights }: ConvShared) => weights().db.view(bShape)] : []),
    ],
  });
}

interface ConvShared {
  /** The incoming gradient through the fused ReLU. */
  gy: Tensor;
  weights: () => { dw: Tensor; db: Tensor };
}

/** The weights as (E, Cout, Cin, k, k): a view with E = 1 for plain convolution weights. */
function asExperts(w: Tensor): Tensor {
  return w.rank === 5 ? w.alias() : w.view([1, ...w.shape]);
}
