/** The dense encoder of one modality (docs/moe-fusion.md §2). */
import type { Tensor } from '../tensor/tensor.ts';
import { conv2d, concat } from '../ops/index.ts';
import { tidy } from '../tensor/engine.ts';
import { conv, type Bound } from './parameters.ts';

/** One convolution per stream (conv_r visible, conv_i infrared). */
const streams = (out: number, inputs: number) => ({ conv_r: conv(out, inputs, 3), conv_i: conv(out, inputs, 3) });

/** The encoders' convolutions, as the reference names them. */
export function encoderLayout() {
  return { Conv1: streams(16, 1), DenseConv1: streams(16, 16), DenseConv2: streams(16, 32), DenseConv3: streams(16, 48) };
}

export type EncoderParams<T = Tensor> = Bound<ReturnType<typeof encoderLayout>, T>;

export interface Encoding {
  /** x_enc: the last conv's 16 channels. */
  enc: Tensor;
  /** x_dense = cat(x0, x1, x2, x_enc): 64 channels. */
  dense: Tensor;
}

/**
 * stream 'r' (visible) or 'i' (infrared); img is (B,1,H,W). The intermediate tensors are released on return (the
 * autograd graph keeps its own references to what the backward needs).
 */
export function encode(p: EncoderParams, stream: 'r' | 'i', img: Tensor): Encoding {
  return tidy(() => {
    const conv = (c: EncoderParams['Conv1'], x: Tensor, relu = false) => {
      const { weight, bias } = c[`conv_${stream}`];
      return conv2d(x, weight, bias, { relu });
    };
    const x0 = conv(p.Conv1, img, true);
    const x1 = conv(p.DenseConv1, x0);
    const d1 = concat([x0, x1], 1);
    const x2 = conv(p.DenseConv2, d1);
    const d2 = concat([d1, x2], 1);
    const enc = conv(p.DenseConv3, d2);
    const dense = concat([d2, enc], 1);
    return { enc, dense };
  });
}
