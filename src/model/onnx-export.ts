/**
 * MoE-Fusion's fusion network as an ONNX model (`moefusion export --onnx`, `exportOnnx`): both encoders, the
 * foreground and background mixtures of local experts, the mixture of global experts and their combination, as
 * FusionNet.forward computes them at inference (gates without noise). Inputs `ir`, `vis` and `attention`, float32
 * [1, 1, H, W] in [0, 1] with H and W free: each gate resizes its input to its fixed grid inside the graph (Resize,
 * bilinear, align_corners), as the engine does. Output `fused`, [1, 1, H, W], unclamped.
 *
 * Routing in standard ops, running only the k chosen experts as the engine does: a gate is Resize → MatMul → TopK →
 * Softmax over the top k; the chosen experts' weights are gathered from constants stacked per layer (E, out, in, 3, 3)
 * and run as one convolution of k groups, so the multiply-adds are those of k experts; the outputs are mixed by
 * log Σ g·exp(y) in its stable form (max + log Σ g·exp(y − max)), an underflowing sum giving log(2.2e−16) as in the
 * reference. The price: the gathers copy the chosen experts' weights each run, and convolutions whose weights are
 * computed cannot be pre-packed by a runtime.
 */
import { configToMetadata, type FusionConfig } from './config.ts';
import { GLOBAL_CHANNELS, LOCAL_CHANNELS, type FusionParams } from './fusion-net.ts';
import type { EncoderParams } from './encoder.ts';
import type { MixtureParams } from './mixture.ts';
import { hostWeightsFromFile, type HostWeights } from './weights.ts';
import { WeightsError, type HostTensor } from './state-dict.ts';
import { readWeights, type WeightsSource } from './weights-source.ts';
import type { SafetensorsFile } from '../io/safetensors.ts';
import { ATTENTION_METADATA_KEY } from './attention.ts';
import { OnnxGraph, MAX_MODEL_BYTES, MIN_OPSET, MAX_OPSET } from './onnx-graph.ts';
import { LOG_EPS, LOG_UNDERFLOW } from '../kernels/combine.ts';

export { MIN_OPSET, MAX_OPSET };

/** Opset 17 (ONNX 1.12): every onnxruntime since 1.12 runs it, in Node and in browsers. */
export const DEFAULT_OPSET = 17;

export interface OnnxExportOptions {
  /** ONNX opset, MIN_OPSET to MAX_OPSET (default 17). */
  opset?: number;
  /** Largest model accepted, in bytes: a protobuf message holds at most 2 GiB (the default). */
  maxBytes?: number;
}

/** The ONNX model (its bytes) of a weights file: a path (Node), a URL, or the bytes of a safetensors file. */
export async function exportOnnx(weights: WeightsSource, opts: OnnxExportOptions = {}): Promise<Uint8Array> {
  const { file, source } = await readWeights(weights);
  return onnxFromWeightsFile(file, source, opts);
}

/** The same from a parsed weights file; `source` names it in errors. The attention mode it records is kept. */
export function onnxFromWeightsFile(file: SafetensorsFile, source: string, opts: OnnxExportOptions = {}): Uint8Array {
  const { params, config } = hostWeightsFromFile(file, source);
  const attention = file.metadata[ATTENTION_METADATA_KEY];
  return fusionOnnx(params, config, { ...opts, source, metadata: attention ? { [ATTENTION_METADATA_KEY]: attention } : {} });
}

/** The ONNX model of checked parameters in CPU memory; `source` names them in errors. */
export function fusionOnnx(
  params: HostWeights,
  config: FusionConfig,
  opts: OnnxExportOptions & { source?: string; metadata?: Record<string, string> } = {},
): Uint8Array {
  const source = opts.source ?? 'weights';
  const maxBytes = opts.maxBytes ?? MAX_MODEL_BYTES;
  const needed = params.entries.reduce((n, { spec, value }) => n + (spec.leaf.trainingOnly ? 0 : value.data.byteLength), 0);
  if (needed > maxBytes)
    throw new WeightsError(
      source,
      `its network has ${mib(needed)} MiB of float32 weights, more than the ${mib(maxBytes)} MiB an ONNX file holds ` +
        `(gate grids ${grid(config.localGate)} and ${grid(config.globalGate)}, ${config.experts} experts); train with smaller --gate-grids`,
    );
  const g = new OnnxGraph('moefusion', opts.opset ?? DEFAULT_OPSET);
  new FusionGraph(g, params.tree, config).build();
  return g.encode({
    producer: 'moefusion',
    doc:
      'MoE-Fusion infrared/visible fusion (ICCV 2023) exported by moefusion. Inputs ir, vis, attention: float32 [1,1,H,W] ' +
      'in [0,1] (attention: the foreground weight Att, 0.5 for none). Output fused: [1,1,H,W], unclamped.',
    metadata: { 'moefusion.config': configToMetadata(config), ...opts.metadata },
  });
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
/** A gate grid as sizes are written (WIDTHxHEIGHT, as --gate-grids takes it). */
const grid = ([h, w]: [number, number]) => `${w}x${h}`;

type Mixture = MixtureParams<HostTensor>;
type Conv = Mixture['experts'][string];
/** The mixtures' names: state-dict names, which name their nodes. */
type MixtureName = 'encoder.moe_fg' | 'encoder.moe_bg' | 'DecoderMoE';

/** Builds the network's nodes into a graph. */
class FusionGraph {
  private readonly one: string;

  constructor(
    private readonly g: OnnxGraph,
    private readonly p: FusionParams<HostTensor>,
    private readonly cfg: FusionConfig,
  ) {
    this.one = g.floats('one', new Float32Array([1]), [1]);
  }

  /** A tensor as an initializer under its engine name. */
  private param(t: HostTensor): string {
    return this.g.floats(t.name, t.data, t.shape);
  }

  build(): void {
    const g = this.g;
    const dims = [1, 1, 'height', 'width'];
    const ir = g.input('ir', dims);
    const vis = g.input('vis', dims);
    const attention = g.input('attention', dims);
    const { encoder, DecoderMoE } = this.p;
    const v = this.encode(encoder, 'r', vis);
    const i = this.encode(encoder, 'i', ir);
    const background = g.op('Sub', [this.one, attention], {}, 'background');
    const yFg = this.localMixture('encoder.moe_fg', encoder.moe_fg, v.enc, i.enc, attention);
    const yBg = this.localMixture('encoder.moe_bg', encoder.moe_bg, v.enc, i.enc, background);
    const xf = g.op('Concat', [v.dense, i.dense, yFg, yBg], { axis: 1 }, 'x_f');
    const { indices, gates } = this.gate('DecoderMoE', DecoderMoE, xf, GLOBAL_CHANNELS, this.cfg.globalGate);
    const fused = this.experts('DecoderMoE', DecoderMoE, xf, indices, gates);
    g.output(fused, 'fused', dims);
  }

  private conv(x: string, weight: string, bias: string, name: string, o: { relu?: boolean; group?: number } = {}): string {
    const y = this.g.op('Conv', [x, weight, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: o.group ?? 1 }, name);
    return o.relu ? this.g.op('Relu', [y], {}, `${name}/relu`) : y;
  }

  /** The dense encoder of one stream (encoder.ts): x_enc and x_dense. */
  private encode(p: EncoderParams<HostTensor>, stream: 'r' | 'i', img: string): { enc: string; dense: string } {
    const g = this.g;
    const conv = (c: EncoderParams<HostTensor>['Conv1'], x: string, relu = false) => {
      const { weight, bias } = c[`conv_${stream}`];
      return this.conv(x, this.param(weight), this.param(bias), weight.name.replace(/\.weight$/, ''), { relu });
    };
    const x0 = conv(p.Conv1, img, true);
    const x1 = conv(p.DenseConv1, x0);
    const d1 = g.op('Concat', [x0, x1], { axis: 1 }, `d1_${stream}`);
    const x2 = conv(p.DenseConv2, d1);
    const d2 = g.op('Concat', [d1, x2], { axis: 1 }, `d2_${stream}`);
    const enc = conv(p.DenseConv3, d2);
    return { enc, dense: g.op('Concat', [d2, enc], { axis: 1 }, `dense_${stream}`) };
  }

  /**
   * A mixture of local experts (fusion-net.ts): the gate sees cat(v·w, i·w); experts 0..E/2−1 read the visible
   * half of those channels, the others the infrared half, so each chosen expert's channels are gathered by a table.
   */
  private localMixture(name: MixtureName, p: Mixture, visEnc: string, irEnc: string, weight: string): string {
    const g = this.g;
    const { experts: E } = this.cfg;
    const C = LOCAL_CHANNELS / 2;
    const vw = g.op('Mul', [visEnc, weight], {}, `${name}/vis`);
    const iw = g.op('Mul', [irEnc, weight], {}, `${name}/ir`);
    const both = g.op('Concat', [vw, iw], { axis: 1 }, `${name}/input`);
    const { indices, gates } = this.gate(name, p, both, LOCAL_CHANNELS, this.cfg.localGate);
    const table = Array.from({ length: E * C }, (_, j) => Math.floor(Math.floor(j / C) / (E / 2)) * C + (j % C));
    const channelsOf = g.ints(`${name}/channels_of_expert`, table, [E, C]);
    const channels = g.op('Reshape', [g.op('Gather', [channelsOf, indices], { axis: 0 }, `${name}/channels`), g.ints('flat', [-1])], {}, `${name}/channels_flat`);
    const input = g.op('Gather', [both, channels], { axis: 1 }, `${name}/expert_input`);
    return this.experts(name, p, input, indices, gates);
  }

  /** Resize to the grid, the gate's linear map, the top k and their softmax: (k) int64 indices, (1, k) gates. */
  private gate(name: MixtureName, p: Mixture, x: string, channels: number, grid: [number, number]): { indices: string; gates: string } {
    const g = this.g;
    const small = g.op(
      'Resize',
      [x, '', '', g.ints(`${name}/grid`, [1, channels, ...grid])],
      { mode: 'linear', coordinate_transformation_mode: 'align_corners' },
      `${name}/gate_input`,
    );
    const flat = g.op('Reshape', [small, g.ints('row', [1, -1])], {}, `${name}/gate_flat`);
    const logits = g.op('MatMul', [flat, this.param(p.w_gate)], {}, `${name}/logits`);
    const [values, top] = g.node('TopK', [logits, g.ints('k', [this.cfg.k])], { axis: -1, largest: 1, sorted: 1 }, 2, `${name}/top_k`);
    const gates = g.op('Softmax', [values], { axis: -1 }, `${name}/gates`);
    const indices = g.op('Reshape', [top, g.ints('flat', [-1])], {}, `${name}/experts`);
    return { indices, gates };
  }

  /**
   * The chosen experts of a mixture: each layer's weights of the k experts gathered and run as one convolution of k
   * groups (the first layer of global experts, which share their input, as one plain convolution), then combined.
   */
  private experts(name: MixtureName, p: Mixture, input: string, indices: string, gates: string): string {
    const g = this.g;
    const { k } = this.cfg;
    const layers: Conv[] = Object.values(p.experts);
    let h = input;
    layers.forEach((c, layer) => {
      const at = c.weight.name.replace(/\.weight$/, '');
      const [, out, inputs, kh, kw] = c.weight.shape;
      const w = g.op('Gather', [this.param(c.weight), indices], { axis: 0 }, `${at}.weight/chosen`);
      const b = g.op('Gather', [this.param(c.bias), indices], { axis: 0 }, `${at}.bias/chosen`);
      const shared = layer === 0 && name === 'DecoderMoE';
      h = this.conv(
        h,
        g.op('Reshape', [w, g.ints(`${at}.weight/shape`, [k * out, inputs, kh, kw])], {}, `${at}.weight/grouped`),
        g.op('Reshape', [b, g.ints('flat', [-1])], {}, `${at}.bias/grouped`),
        at,
        { relu: layer < layers.length - 1, group: shared ? 1 : k },
      );
    });
    return this.combine(name, h, gates, layers[layers.length - 1].weight.shape[1]);
  }

  /** y (1, k·C, H, W) → log Σ_s g_s·exp(y_s), stably, (1, C, H, W) (kernels/combine.ts). */
  private combine(name: MixtureName, y: string, gates: string, C: number): string {
    const g = this.g;
    const { k } = this.cfg;
    const ys = g.op('Reshape', [y, g.ints(`${name}/per_expert`, [k, C, 0, 0])], {}, `${name}/outputs`);
    const max = this.reduce('ReduceMax', ys, `${name}/max`);
    const scaled = g.op('Exp', [g.op('Sub', [ys, max], {}, `${name}/centred`)], {}, `${name}/exp`);
    const weights = g.op('Reshape', [gates, g.ints('per_slot', [k, 1, 1, 1])], {}, `${name}/gate_weights`);
    const sum = this.reduce('ReduceSum', g.op('Mul', [scaled, weights], {}, `${name}/weighted`), `${name}/sum`);
    const lse = g.op('Add', [max, g.op('Log', [sum], {}, `${name}/log`)], {}, `${name}/lse`);
    const underflow = g.op('Less', [lse, g.floats('log_underflow', new Float32Array([LOG_UNDERFLOW]), [])], {}, `${name}/underflow`);
    return g.op('Where', [underflow, g.floats('log_eps', new Float32Array([LOG_EPS]), []), lse], {}, `${name}/combined`);
  }

  /** A reduction over axis 0 keeping it; the axes are an input from opset 18 (ReduceSum: 13). */
  private reduce(op: 'ReduceMax' | 'ReduceSum', x: string, name: string): string {
    const asInput = op === 'ReduceSum' || this.g.opset >= 18;
    return asInput
      ? this.g.op(op, [x, this.g.ints('axis0', [0])], { keepdims: 1 }, name)
      : this.g.op(op, [x], { axes: [0], keepdims: 1 }, name);
  }
}
