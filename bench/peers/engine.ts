/**
 * The engine itself as a benchmark "peer". Measured like TF.js: wall time from recording the op until the GPU has
 * finished it (a sync, as TF.js's one-value read-back), so that the ratios compare like with like.
 */
import { engine, noGrad } from '../../src/graph/engine.ts';
import { Tensor } from '../../src/graph/tensor.ts';
import { conv2d } from '../../src/graph/ops/conv.ts';
import { matmul } from '../../src/graph/ops/matmul.ts';
import { median, randomData, type ConvCase, type Peer } from './common.ts';

async function timeOp(run: () => Tensor, runs: number): Promise<number> {
  const rt = engine().rt;
  const times: number[] = [];
  for (let i = -1; i < runs; i++) {
    await rt.sync();
    const t0 = performance.now();
    const out = run();
    await rt.sync();
    if (i >= 0) times.push(performance.now() - t0);
    out.dispose();
  }
  return median(times);
}

export function enginePeer(): Peer {
  return {
    name: 'engine',
    async conv(c: ConvCase, runs: number) {
      const x = Tensor.fromArray(randomData(c.n * c.cin * c.h * c.w, 1), [c.n, c.cin, c.h, c.w]);
      const w = Tensor.fromArray(randomData(c.cout * c.cin * c.k * c.k, 2), [c.cout, c.cin, c.k, c.k]);
      const b = Tensor.fromArray(randomData(c.cout, 3), [c.cout]);
      const ms = await timeOp(() => noGrad(() => conv2d(x, w, b, { relu: true })), runs);
      for (const t of [x, w, b]) t.dispose();
      return ms;
    },
    async matmul(m: number, k: number, n: number, runs: number) {
      const a = Tensor.fromArray(randomData(m * k, 4), [m, k]);
      const b = Tensor.fromArray(randomData(k * n, 5), [k, n]);
      const ms = await timeOp(() => noGrad(() => matmul(a, b)), runs);
      a.dispose();
      b.dispose();
      return ms;
    },
    async dispose() {},
  };
}
