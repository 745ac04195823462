/**
 * The engine itself as a benchmark "peer". Measured like TF.js: wall time from recording the op until the GPU has
 * finished it (a sync, as TF.js's one-value read-back), so that the ratios compare like with like.
 */
import { engine, noGrad } from '../../src/tensor/engine.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { conv2d } from '../../src/ops/conv.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { convData, randomData, type ConvCase, type Peer, type Timed } from './common.ts';

/** Times `run` (its outputs disposed after each run); `output` reads its first output back. Disposes `inputs` at the end. */
export function timed(run: () => Tensor | Tensor[], inputs: Tensor[]): Timed {
  const rt = engine().rt;
  const outputs = () => [run()].flat();
  return {
    async once() {
      await rt.sync();
      const t0 = performance.now();
      const outs = outputs();
      await rt.sync();
      const ms = performance.now() - t0;
      outs.forEach((t) => t.dispose());
      return ms;
    },
    async output() {
      const outs = outputs();
      const data = await outs[0].data();
      outs.forEach((t) => t.dispose());
      return data;
    },
    async dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}

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
