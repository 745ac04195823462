/** onnxruntime-node's WebGPU execution provider, on one-op models written by hand (onnx-proto.ts). */
import { convModel, matmulModel } from './onnx-proto.ts';
import { convData, randomData, type ConvCase, type Peer } from './common.ts';

export async function onnxPeer(): Promise<Peer> {
  const ort = await import('onnxruntime-node');
  const session = async (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'] });
  // Fails here (rather than mid-benchmark) when the WebGPU EP cannot start.
  await session(matmulModel(4, 4, 4, randomData(16)));
  /** Wall time of one run, including the upload of the input and the download of the output. */
  const timed = (s: Awaited<ReturnType<typeof session>>, feeds: Record<string, InstanceType<typeof ort.Tensor>>) => ({
    async once() {
      const t0 = performance.now();
      await s.run(feeds);
      return performance.now() - t0;
    },
    async output() {
      const out = await s.run(feeds);
      return Object.values(out)[0].data as Float32Array;
    },
    dispose: () => s.release(),
  });
  return {
    name: 'onnxruntime-webgpu',
    async conv(c: ConvCase) {
      const d = convData(c);
      const s = await session(convModel(c.n, c.cin, c.cout, c.h, c.w, c.k, d.w, d.b));
      const x = new ort.Tensor('float32', d.x, [c.n, c.cin, c.h, c.w]);
      return timed(s, { x });
    },
    async matmul(m: number, k: number, n: number) {
      const s = await session(matmulModel(m, k, n, randomData(k * n, 5)));
      const a = new ort.Tensor('float32', randomData(m * k, 4), [m, k]);
      return timed(s, { a });
    },
    async dispose() {},
  };
}
