/** TF.js's WebGPU backend on the same adapter (Dawn through the `webgpu` package), NHWC fused conv + bias + ReLU. */
import { create, globals } from 'webgpu';
import { convData, randomData, type ConvCase, type Peer } from './common.ts';

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
    async output() {
      const y = op();
      const data = await y.data();
      y.dispose();
      return data;
    },
    async dispose() {
      tf.dispose(inputs);
    },
  });
  return {
    name: 'tfjs-webgpu',
    async conv(c: ConvCase) {
      // The same operands as the other peers, transposed to TF.js's NHWC input and (K, K, Cin, Cout) filter.
      const d = convData(c);
      const x = tf.tidy(() => tf.transpose(tf.tensor4d(d.x, [c.n, c.cin, c.h, c.w]), [0, 2, 3, 1]));
      const w = tf.tidy(() => tf.transpose(tf.tensor4d(d.w, [c.cout, c.cin, c.k, c.k]), [2, 3, 1, 0]));
      const b = tf.tensor1d(d.b);
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
