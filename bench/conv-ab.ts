/**
 * A/B timing of the 3×3 convolution's algorithms (direct, Winograd F(4×4), F(6×6)) on the same inputs in one
 * process, taking turns (A, B, C, A, B, C, …) so that a change in the machine's load reaches all of them; prints, per
 * algorithm, the median wall time and process CPU time (on lavapipe the GPU is this process's threads, and CPU time is
 * the steadier measure on a shared machine), the median of the per-round ratios to the first algorithm, and the
 * first run's wall time (which includes compiling its kernels: MESA_SHADER_CACHE_DISABLE=true for cold compiles).
 *
 *   npx tsx bench/conv-ab.ts [--shapes 1x160x64x480x640,1x64x64x480x640] [--rounds 5] [--algos direct,winograd4,winograd6] [--pass forward|input|weight] [--routed]
 *
 * A shape is NxCINxCOUTxHxW of the forward convolution. --pass input times its input gradient, --pass weight its
 * weight and bias gradients; --routed makes it a routed convolution of top-2 of 4 experts per sample (2N output
 * samples).
 */
import { parseArgs } from 'node:util';
import { engine, initEngine, noGrad, shutdownEngine } from '../src/tensor/engine.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { conv2dKernel, conv2dInputGradKernel } from '../src/kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../src/kernels/conv2d-grad.ts';
import type { ConvChoice } from '../src/kernels/conv2d-choice.ts';
import { engineVariant } from '../src/kernels/variant.ts';
import { median, randomData } from '../src/bench/kernels.ts';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: '1x64x64x120x160' },
    rounds: { type: 'string', default: '5' },
    algos: { type: 'string', default: 'direct,winograd4,winograd6' },
    pass: { type: 'string', default: 'forward' },
    routed: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
if (!['forward', 'input', 'weight'].includes(values.pass!)) throw new Error(`--pass ${values.pass}: expected forward, input or weight`);
const algos = values.algos!.split(',') as ConvChoice[];
const { rt } = await initEngine();
const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);

for (const spec of values.shapes!.split(',')) {
  const [n, ci, co, h, w] = spec.split('x').map(Number);
  const E = values.routed ? 4 : 1;
  const nv = values.routed ? 2 * n : n;
  const table = values.routed ? Tensor.fromArray(Array.from({ length: nv }, (_, o) => [o >> 1, (o * 3) % E]).flat(), [nv, 2], 'u32') : null;
  const x = random([n, ci, h, w], 1);
  const gy = random([nv, co, h, w], 4);
  const wt = random([E, co, ci, 3, 3], 2);
  const b = random([E, co], 3);
  const run = (algo: ConvChoice) => {
    const variant = { ...engineVariant(), conv: algo };
    return noGrad(() => {
      if (values.pass === 'input') return [conv2dInputGradKernel(gy, wt, table, 1, n, variant)];
      if (values.pass === 'weight') return Object.values(conv2dWeightGradKernel(x, gy, table, E, 3, 1, variant));
      return [conv2dKernel({ x, w: wt, bias: b, table, pad: 1, relu: true, variant })];
    });
  };
  const wall = new Map<ConvChoice, number[]>(algos.map((a) => [a, []]));
  const cpu = new Map<ConvChoice, number[]>(algos.map((a) => [a, []]));
  const first = new Map<ConvChoice, number>();
  for (let r = -1; r < rounds; r++)
    for (const algo of algos) {
      await rt.sync();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const y = run(algo);
      await rt.sync();
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      y.forEach((t) => t.dispose());
      if (r < 0) first.set(algo, ms);
      else {
        wall.get(algo)!.push(ms);
        cpu.get(algo)!.push((c.user + c.system) / 1000);
      }
    }
  const what = `${values.pass} ${values.routed ? 'routed ' : ''}${spec}`;
  console.log(`\n${what} (${rounds} rounds; speed-up: median of the per-round ratios to ${algos[0]})`);
  const ratio = (m: Map<ConvChoice, number[]>, algo: ConvChoice) => median(m.get(algo)!.map((v, i) => m.get(algos[0])![i] / v)).toFixed(2);
  for (const algo of algos)
    console.log(
      `  ${algo.padEnd(10)} wall ${median(wall.get(algo)!).toFixed(1).padStart(8)} ms (${ratio(wall, algo)}×)  cpu ${median(cpu.get(algo)!).toFixed(1).padStart(8)} ms (${ratio(cpu, algo)}×)  first run ${first.get(algo)!.toFixed(0).padStart(6)} ms`,
    );
  for (const t of [x, gy, wt, b, table]) t?.dispose();
}
console.log(`dispatches: ${[...engine().rt.dispatchesByLabel].map(([k, v]) => `${k} ${v}`).join(', ')}`);
shutdownEngine();
