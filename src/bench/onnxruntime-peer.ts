/**
 * onnxruntime-node as a peer of the end-to-end benchmark: the network as `exportOnnx` writes it, on onnxruntime's CPU
 * or WebGPU execution provider. In Node the WebGPU provider runs on its own Dawn, which on a machine without a GPU
 * finds the same lavapipe adapter as the engine. onnxruntime-node is a development dependency: without it the peer
 * says so instead of running.
 */
import type { InferenceSession } from 'onnxruntime-node';

export type OrtProvider = 'cpu' | 'webgpu';
export const ORT_PROVIDERS: readonly OrtProvider[] = ['cpu', 'webgpu'];

/** "cpu,webgpu" → the providers ('' or "none": none); an unknown name is a RangeError naming the option. */
export function parseProviders(spec: string, option = '--ort'): OrtProvider[] {
  const names = spec === 'none' ? [] : spec.split(',').filter(Boolean);
  for (const n of names)
    if (!ORT_PROVIDERS.includes(n as OrtProvider)) throw new RangeError(`${option} ${spec}: expected providers from ${ORT_PROVIDERS.join(', ')}, comma-separated, or none`);
  return names as OrtProvider[];
}

export class OrtPeer {
  private constructor(
    readonly provider: OrtProvider,
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly session: InferenceSession,
  ) {}

  get name(): string {
    return `onnxruntime-${this.provider}`;
  }

  /** A session of `model` (ONNX bytes) on `provider`; fails with the reason (no package, no provider, a bad model). */
  static async start(provider: OrtProvider, model: Uint8Array): Promise<OrtPeer> {
    let ort: typeof import('onnxruntime-node');
    try {
      ort = await import('onnxruntime-node');
    } catch {
      throw new Error('onnxruntime-node is not installed (a development dependency of moefusion: npm install onnxruntime-node)');
    }
    const session = await ort.InferenceSession.create(model, { executionProviders: [provider], logSeverityLevel: 3 });
    return new OrtPeer(provider, ort, session);
  }

  /** One fusion of a pair (1,1,H,W) with Att: the inputs go in and `fused` comes back, as a user would run it. */
  async fuse(ir: Float32Array, vis: Float32Array, attention: Float32Array, width: number, height: number): Promise<Float32Array> {
    const feed = (data: Float32Array) => new this.ort.Tensor('float32', data, [1, 1, height, width]);
    const out = await this.session.run({ ir: feed(ir), vis: feed(vis), attention: feed(attention) });
    return out.fused.data as Float32Array;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
