/** TF.js's WebGPU backend on the same adapter (Dawn through the `webgpu` package), NHWC fused conv + bias + ReLU. */
import { create, globals } from 'webgpu';
import { randomData, type ConvCase, type Peer } from './common.ts';

export async function tfjsPeer(): Promise<Peer> {
  Object.assign(globalThis, globals);
  (globalThis as unknown as { navigator: unknown }).navigator = { gpu: create(['disable-dawn-features=timestamp_quantization']) };
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
  await tf.ready();
  /** Wall time of one op including a one-value readback (TF.js queues work until data is requested). */
  const timed = (op: () => import('@tensorflow/tfjs-core').Tensor, inputs: import('@tensorflow/tfjs-core').Tensor[]) => ({
    async once() {
      const t0 = performance.now();
      const y = op();
      const one = tf.slice(tf.reshape(y, [-1]), 0, 1);
      await one.data();
      const ms = performance.now() - t0;
      tf.dispose([y, one]);
      return ms;
    },
    async dispose() {
      tf.dispose(inputs);
    },
  });
  return {
    name: 'tfjs-webgpu',
    async conv(c: ConvCase) {
      const x = tf.tensor4d(randomData(c.n * c.h * c.w * c.cin, 1), [c.n, c.h, c.w, c.cin]);
      const w = tf.tensor4d(randomData(c.k * c.k * c.cin * c.cout, 2), [c.k, c.k, c.cin, c.cout]);
      const b = tf.tensor1d(randomData(c.cout, 3));
      return timed(() => tf.fused.conv2d({ x, filter: w, bias: b, strides: 1, pad: 'same', activation: 'relu' }), [x, w, b]);
    },
    async matmul(m: number, k: number, n: number) {
      const a = tf.tensor2d(randomData(m * k, 4), [m, k]);
      const b = tf.tensor2d(randomData(k * n, 5), [k, n]);
      return timed(() => tf.matMul(a, b), [a, b]);
    },
    async dispose() {
      tf.disposeVariables();
    },
  };
}
