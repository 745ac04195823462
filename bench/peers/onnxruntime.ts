/** onnxruntime-node's WebGPU execution provider, on one-op models written with the project's ONNX builder. */
import { OnnxGraph } from '../../src/model/onnx-graph.ts';
import { convData, randomData, type ConvCase, type Peer } from './common.ts';

/** Conv (k×k, same padding) + bias + ReLU on an (n, cin, h, w) input `x`. */
function convModel(n: number, cin: number, cout: number, h: number, w: number, k: number, weights: Float32Array, bias: Float32Array): Uint8Array {
  const g = new OnnxGraph('bench', 17);
  const p = (k - 1) / 2;
  const c = g.op('Conv', [g.input('x', [n, cin, h, w]), g.floats('w', weights, [cout, cin, k, k]), g.floats('b', bias, [cout])], { kernel_shape: [k, k], pads: [p, p, p, p] });
  g.output(g.op('Relu', [c]), 'y', [n, cout, h, w]);
  return g.encode();
}

/** y = a · b for an (m, k) input `a` and a (k, n) constant. */
function matmulModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  const g = new OnnxGraph('bench', 17);
  g.output(g.op('MatMul', [g.input('a', [m, k]), g.floats('b', b, [k, n])]), 'y', [m, n]);
  return g.encode();
}

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
