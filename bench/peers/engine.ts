/**
 * The engine itself as a benchmark "peer". Measured like TF.js: wall time from recording the op until the GPU has
 * finished it (a sync, as TF.js's one-value read-back), so that the ratios compare like with like.
 */
import { noGrad } from '../../src/tensor/engine.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { conv2d } from '../../src/ops/conv.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { convData, randomData, type ConvCase, type Peer } from './common.ts';
import { timed } from '../../src/bench/kernels.ts';

/** The timing of the engine-only benchmark (src/bench/kernels.ts). */
export { timed };

export function enginePeer(): Peer {
  return {
    name: 'engine',
    async conv(c: ConvCase) {
      const d = convData(c);
      const x = Tensor.fromArray(d.x, [c.n, c.cin, c.h, c.w]);
      const w = Tensor.fromArray(d.w, [c.cout, c.cin, c.k, c.k]);
      const b = Tensor.fromArray(d.b, [c.cout]);
      return timed(() => noGrad(() => conv2d(x, w, b, { relu: true })), [x, w, b]);
    },
    async matmul(m: number, k: number, n: number) {
      const a = Tensor.fromArray(randomData(m * k, 4), [m, k]);
      const b = Tensor.fromArray(randomData(k * n, 5), [k, n]);
      return timed(() => noGrad(() => matmul(a, b)), [a, b]);
    },
    async dispose() {},
  };
}
