/**
 * A/B timing of the 3×3 convolution's algorithms (direct, Winograd F(4×4), F(6×6)) on the same inputs in one
 * process, taking turns (A, B, C, A, B, C, …) so that a change in the machine's load reaches all of them; prints the
 * median of each and the median of the per-round ratios to the direct kernel, and each algorithm's first run (which
 * includes compiling its kernels: run with MESA_SHADER_CACHE_DISABLE=true for cold compiles).
 *
 *   npx tsx bench/conv-ab.ts [--shapes 1x160x64x480x640,1x64x64x480x640] [--rounds 5] [--algos direct,winograd4,winograd6] [--grad] [--routed]
 *
 * A shape is NxCINxCOUTxHxW. --grad times the input gradient instead of the forward; --routed a routed
 * convolution of top-2 of 4 experts per sample (2N output samples).
 */
import { parseArgs } from 'node:util';
import { engine, initEngine, noGrad, shutdownEngine } from '../src/tensor/engine.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { conv2dKernel, conv2dInputGradKernel } from '../src/kernels/conv2d.ts';
import { setConvAlgorithm, type ConvChoice } from '../src/kernels/conv2d-choice.ts';
import { median, randomData } from '../src/bench/kernels.ts';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: '1x64x64x120x160' },
    rounds: { type: 'string', default: '5' },
    algos: { type: 'string', default: 'direct,winograd4,winograd6' },
    grad: { type: 'boolean', default: false },
    routed: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const algos = values.algos!.split(',') as ConvChoice[];
const { rt } = await initEngine();
const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);

for (const spec of values.shapes!.split(',')) {
  const [n, ci, co, h, w] = spec.split('x').map(Number);
  const E = values.routed ? 4 : 1;
  const nv = values.routed ? 2 * n : n;
  const table = values.routed ? Tensor.fromArray(Array.from({ length: nv }, (_, o) => [o >> 1, (o * 3) % E]).flat(), [nv, 2], 'u32') : null;
  const x = values.grad ? random([nv, co, h, w], 1) : random([n, ci, h, w], 1);
  const wt = random([E, co, ci, 3, 3], 2);
  const b = random([E, co], 3);
  const run = (algo: ConvChoice) => {
    setConvAlgorithm(algo);
    return noGrad(() => (values.grad ? conv2dInputGradKernel(x, wt, table, 1, n) : conv2dKernel({ x, w: wt, bias: b, table, pad: 1, relu: true })));
  };
  const times = new Map<ConvChoice, number[]>(algos.map((a) => [a, []]));
  const first = new Map<ConvChoice, number>();
  for (let r = -1; r < rounds; r++)
    for (const algo of algos) {
      await rt.sync();
      const t0 = performance.now();
      const y = run(algo);
      await rt.sync();
      const ms = performance.now() - t0;
      y.dispose();
      if (r < 0) first.set(algo, ms);
      else times.get(algo)!.push(ms);
    }
  const base = times.get(algos[0])!;
  const what = `${values.grad ? 'input gradient' : 'forward'} ${values.routed ? 'routed ' : ''}${spec}`;
  console.log(`\n${what} (${rounds} rounds, machine shared: compare ratios)`);
  for (const algo of algos) {
    const t = times.get(algo)!;
    const ratio = median(t.map((v, i) => base[i] / v));
    console.log(`  ${algo.padEnd(10)} median ${median(t).toFixed(1).padStart(8)} ms  first run ${first.get(algo)!.toFixed(0).padStart(6)} ms  speed-up vs ${algos[0]} ${ratio.toFixed(2)}×  [${t.map((v) => v.toFixed(0)).join(' ')}]`);
  }
  for (const t of [x, wt, b, table]) t?.dispose();
}
setConvAlgorithm('auto');
console.log(`dispatches: ${[...engine().rt.dispatchesByLabel].map(([k, v]) => `${k} ${v}`).join(', ')}`);
shutdownEngine();
