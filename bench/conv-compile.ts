/**
 * Compile time of each convolution kernel at its first dispatch, the direct kernels (every variant the engine uses on
 * this adapter: forward, input gradient, weight gradient) and the Winograd ones (transforms, multiplies). lavapipe
 * compiles a pipeline when its first dispatch runs, so each kernel's first dispatch is replayed alone and timed (wall
 * and this process's CPU time) minus a second run of it. Run with the shader cache off for cold compiles:
 *
 *   MESA_SHADER_CACHE_DISABLE=true npx tsx bench/conv-compile.ts
 */
import { engine, initEngine, noGrad, shutdownEngine } from '../src/tensor/engine.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import type { DispatchSpec } from '../src/runtime/runtime.ts';
import { conv2dInputGradKernel, conv2dKernel } from '../src/kernels/conv2d.ts';
import { conv2dWeightGradKernel } from '../src/kernels/conv2d-grad.ts';
import type { ConvChoice } from '../src/kernels/conv2d-choice.ts';
import { engineVariant, type KernelVariant } from '../src/kernels/variant.ts';
import { randomData } from '../src/bench/kernels.ts';

const { rt } = await initEngine();
const random = (shape: number[], seed: number) => Tensor.fromArray(randomData(shape.reduce((a, d) => a * d, 1), seed), shape);
// Big enough for every variant: 16+ channels (packed weights, 16-channel blocks), width a multiple of 4 (vec4 rows).
const [Nin, Cin, Cout, E, H, W] = [1, 40, 40, 2, 24, 32];
const x = random([Nin, Cin, H, W], 1);
const gy = random([2, Cout, H, W], 2);
const w = random([E, Cout, Cin, 3, 3], 3);
const b = random([E, Cout], 4);
const table = Tensor.fromArray([0, 1, 0, 0], [2, 2], 'u32');

/** Records the dispatches of fn instead of running them. */
function capture(fn: () => Tensor[]): DispatchSpec[] {
  const specs: DispatchSpec[] = [];
  const original = rt.dispatch.bind(rt);
  rt.dispatch = (spec: DispatchSpec) => void specs.push(spec);
  try {
    noGrad(fn).forEach((t) => t.dispose());
  } finally {
    rt.dispatch = original;
  }
  return specs;
}

const seen = new Set<string>();
const rows: Array<[string, number, number]> = [];
async function timeOne(spec: DispatchSpec): Promise<[number, number]> {
  await rt.sync();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  rt.dispatch(spec);
  await rt.sync();
  const c = process.cpuUsage(c0);
  return [performance.now() - t0, (c.user + c.system) / 1000];
}

const passes: Array<[string, (v: KernelVariant) => Tensor[]]> = [
  ['forward', (variant) => [conv2dKernel({ x, w, bias: b, table, pad: 1, relu: true, variant })]],
  ['input gradient', (variant) => [conv2dInputGradKernel(gy, w, table, 1, Nin, variant)]],
  ['weight gradient', (variant) => Object.values(conv2dWeightGradKernel(x, gy, table, E, 3, 1, variant))],
];
for (const algorithm of ['direct', 'winograd4', 'winograd6'] as ConvChoice[]) {
  const variant = { ...engineVariant(), conv: algorithm };
  for (const [pass, fn] of passes)
    for (const spec of capture(() => fn(variant))) {
      if (seen.has(spec.code)) continue;
      seen.add(spec.code);
      const [wall, cpu] = await timeOne(spec);
      const [wall2, cpu2] = await timeOne(spec);
      rows.push([`${algorithm} ${pass}: ${spec.label}`, wall - wall2, cpu - cpu2]);
      console.log(`${rows.at(-1)![0].padEnd(64)} compile ${(wall - wall2).toFixed(0).padStart(6)} ms wall, ${(cpu - cpu2).toFixed(0).padStart(6)} ms CPU`);
    }
}
const slowest = (prefix: string) => rows.filter((r) => r[0].startsWith(prefix)).reduce((a, r) => (r[1] > a[1] ? r : a), ['', 0, 0] as [string, number, number]);
console.log(`\nslowest direct kernel: ${slowest('direct')[0]} ${slowest('direct')[1].toFixed(0)} ms; slowest Winograd kernel: ${slowest('winograd')[0]} ${slowest('winograd')[1].toFixed(0)} ms (${engine().rt.handle.summary.description})`);
for (const t of [x, gy, w, b, table]) t.dispose();
shutdownEngine();
