/** TF.js's WebGPU backend on the same adapter (Dawn through the `webgpu` package), NHWC fused conv + bias + ReLU. */
import { create, globals } from 'webgpu';
import { median, randomData, type ConvCase, type Peer } from './common.ts';

export async function tfjsPeer(): Promise<Peer> {
  Object.assign(globalThis, globals);
  (globalThis as unknown as { navigator: unknown }).navigator = { gpu: create(['disable-dawn-features=timestamp_quantization']) };
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
  await tf.ready();
  /** Wall time of one op including a one-value readback (TF.js queues work until data is requested). */
  const time = async (op: () => import('@tensorflow/tfjs-core').Tensor, runs: number) => {
    const times: number[] = [];
    for (let i = -1; i < runs; i++) {
      const t0 = performance.now();
      const y = op();
      const one = tf.slice(tf.reshape(y, [-1]), 0, 1);
      await one.data();
      if (i >= 0) times.push(performance.now() - t0);
      y.dispose();
      one.dispose();
    }
    return median(times);
  };
  return {
    name: 'tfjs-webgpu',
    async conv(c: ConvCase, runs: number) {
      const x = tf.tensor4d(randomData(c.n * c.h * c.w * c.cin, 1), [c.n, c.h, c.w, c.cin]);
      const w = tf.tensor4d(randomData(c.k * c.k * c.cin * c.cout, 2), [c.k, c.k, c.cin, c.cout]);
      const b = tf.tensor1d(randomData(c.cout, 3));
      const ms = await time(() => tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' }), runs);
      tf.dispose([x, w, b]);
      return ms;
    },
    async matmul(m: number, k: number, n: number, runs: number) {
      const a = tf.tensor2d(randomData(m * k, 4), [m, k]);
      const b = tf.tensor2d(randomData(k * n, 5), [k, n]);
      const ms = await time(() => tf.matMul(a, b), runs);
      tf.dispose([a, b]);
      return ms;
    },
    async dispose() {
      tf.disposeVariables();
    },
  };
}
