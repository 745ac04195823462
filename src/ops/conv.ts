/** Differentiable 2-D convolution (stride 1, zero padding, odd square kernels) and its routed (expert) form. */
import type { Tensor } from '../tensor/tensor.ts';
import { record } from '../autograd/tape.ts';
import { tidy } from '../tensor/engine.ts';
import { binaryMapKernel } from '../kernels/elementwise.ts';
import { conv2dKernel, conv2dInputGradKernel } from '../kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../kernels/conv2d-grad.ts';

export interface Conv2dOptions {
  /** Zero padding on every side; default (k − 1) / 2 keeps the image size. */
  padding?: number;
  /** Fuses a ReLU after the bias. */
  relu?: boolean;
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
  const relu = opts.relu ?? false;
  const out = tidy(() => conv2dKernel({ x, w: asExperts(w), bias: b, table, pad, relu }));
  const inputs = b ? [x, w, b] : [x, w];
  return record(
    name,
    inputs,
    out,
    ([g]) => {
      const gy = relu ? binaryMapKernel('select(0.0, a, b > 0.0)', g!, out, 0, 'relu_grad') : g!;
      const dx = x.requiresGrad ? conv2dInputGradKernel(gy, asExperts(w), table, pad, x.shape[0]) : null;
      let dw: Tensor | null = null;
      let db: Tensor | null = null;
      if (w.requiresGrad || b?.requiresGrad) {
        const grads = conv2dWeightGradKernel(x, gy, table, E, K, pad);
        dw = grads.dw.view(w.shape);
        db = b ? grads.db.view(b.shape) : null;
      }
      return b ? [dx, dw, db] : [dx, dw];
    },
    [x, w, ...(table ? [table] : []), ...(relu ? [out] : [])],
  );
}

/** The weights as (E, Cout, Cin, k, k): a view with E = 1 for plain convolution weights. */
function asExperts(w: Tensor): Tensor {
  return w.rank === 5 ? w.alias() : w.view([1, ...w.shape]);
}
