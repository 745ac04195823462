/** The dense encoder of one modality (docs/moe-fusion.md §2). */
import type { Tensor } from '../tensor/tensor.ts';
import { conv2d, concat } from '../ops/index.ts';
import { tidy } from '../tensor/engine.ts';
import type { ParamSet } from './parameters.ts';

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
export function encode(params: ParamSet, stream: 'r' | 'i', img: Tensor): Encoding {
  return tidy(() => encodeStream(params, stream, img));
}

function encodeStream(params: ParamSet, stream: 'r' | 'i', img: Tensor): Encoding {
  const p = (conv: string, what: 'weight' | 'bias') => params.get(`encoder.${conv}.conv_${stream}.${what}`)!;
  const conv = (name: string, x: Tensor, relu = false) => conv2d(x, p(name, 'weight'), p(name, 'bias'), { relu });
  const x0 = conv('Conv1', img, true);
  const x1 = conv('DenseConv1', x0);
  const d1 = concat([x0, x1], 1);
  const x2 = conv('DenseConv2', d1);
  const d2 = concat([d1, x2], 1);
  const enc = conv('DenseConv3', d2);
  const dense = concat([d2, enc], 1);
  return { enc, dense };
}
