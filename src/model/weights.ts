/**
 * Weights under the reference's state-dict names (docs/moe-fusion.md §9), so a file moves between this project and a
 * PyTorch model laid out like the reference. Names may carry the reference's `fusion_head.` prefix. Loading checks
 * every name, shape, dtype and value (NaN and infinities are refused) and says which tensor is wrong. This file works
 * on parsed safetensors on every platform; weights-file.ts reads and writes files in Node.
 */
import { Tensor, parameter } from '../tensor/tensor.ts';
import { parseSafetensors, type SafetensorsFile, type TensorToWrite } from '../io/safetensors.ts';
import { DEFAULT_CONFIG, configFromMetadata, configToMetadata, type FusionConfig } from './config.ts';
import { BUFFERS, paramShapes, stateDictSlots, type ParamSet } from './parameters.ts';
import { DETECTOR_METADATA_KEY } from './detector/config.ts';

const PREFIX = 'fusion_head.';
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export class WeightsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'WeightsError';
  }
}

/** The network and configuration of a parsed weights file (the reference's configuration when none is stored). */
export function weightsFromFile(file: SafetensorsFile, source: string, cfg?: FusionConfig): { params: ParamSet; config: FusionConfig } {
  const { params, config } = hostWeightsFromFile(file, source, cfg);
  return { params: uploadParams(params), config };
}

/** The same, checked, in CPU memory: what needs no GPU (the ONNX export). */
export function hostWeightsFromFile(file: SafetensorsFile, source: string, cfg?: FusionConfig): { params: HostParams; config: FusionConfig } {
  const config = cfg ?? configFromMetadata(file.metadata['moefusion.config'], source);
  const stray = [...file.tensors.keys()].find((n) => n.startsWith('detector.'));
  if (stray && !(DETECTOR_METADATA_KEY in file.metadata))
    throw new WeightsError(source, `tensor ${stray} belongs to a detector, but the file has no '${DETECTOR_METADATA_KEY}' metadata describing one`);
  return { params: hostParamsFromStateDict(file.tensors, source, config), config };
}

/** The same from a weights file's bytes. */
export function weightsFromBytes(bytes: Uint8Array, source: string, cfg?: FusionConfig): { params: ParamSet; config: FusionConfig } {
  return weightsFromFile(parseSafetensors(bytes, source), source, cfg);
}

/** Refuses NaN and infinities, naming the tensor and the first bad element. */
export function checkFinite(data: Float32Array, source: string, name: string): void {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i])) throw new WeightsError(source, `tensor ${name} holds ${data[i]} at element ${i}; weights must be finite`);
}

export interface LoadOptions {
  /** Ignore tensors that are not part of the fusion network (fixtures carry inputs and expected values). */
  ignoreUnknown?: boolean;
}

type StateDict = Map<string, { dtype: string; shape: number[]; data: Float32Array }>;

/** The engine's parameters in CPU memory, under the engine's names (stacked expert layers, as ParamSet). */
export type HostParams = Map<string, { shape: number[]; data: Float32Array }>;

/** Builds engine parameters from state-dict tensors; `file` names the source in errors. */
export function paramsFromStateDict(stored: StateDict, file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): ParamSet {
  return uploadParams(hostParamsFromStateDict(stored, file, cfg, opts));
}

function uploadParams(host: HostParams): ParamSet {
  const params: ParamSet = new Map();
  for (const [name, { shape, data }] of host) params.set(name, parameter(Tensor.fromArray(data, shape), name));
  return params;
}

/** paramsFromStateDict's checks and layout, in CPU memory. */
export function hostParamsFromStateDict(stored: StateDict, file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): HostParams {
  const byName: StateDict = new Map();
  for (const [name, t] of stored) {
    const bare = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
    if (byName.has(bare)) throw new WeightsError(file, `tensor ${bare} appears twice (with and without the ${PREFIX} prefix)`);
    byName.set(bare, t);
  }

  const slots = stateDictSlots(cfg);
  const expected = new Set([...slots.map((s) => s.name), ...Object.keys(BUFFERS)]);
  // Inference-only files may leave out every gate's training-noise matrix; those start at zero (as at init).
  const noiseOnly = (name: string) => name.endsWith('.w_noise');
  const allNoiseMissing = slots.filter((s) => noiseOnly(s.name)).every((s) => !byName.has(s.name));
  const missing = slots.filter((s) => !byName.has(s.name) && !(allNoiseMissing && noiseOnly(s.name))).map((s) => s.name);
  if (missing.length)
    throw new WeightsError(file, `missing ${missing.length} tensor(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  // The detectors' tensors may share the file (detector/weights.ts reads and checks them).
  const unexpected = [...byName.keys()].filter((n) => !expected.has(n) && !n.startsWith('detector.'));
  if (unexpected.length && !opts.ignoreUnknown)
    throw new WeightsError(file, `unexpected tensor(s): ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', …' : ''}`);

  const host = new Map<string, Float32Array>();
  const shapes = paramShapes(cfg);
  for (const [name, shape] of shapes) host.set(name, new Float32Array(shape.reduce((a, d) => a * d, 1)));
  for (const s of slots) {
    const t = byName.get(s.name);
    if (!t) continue; // an omitted noise matrix stays zero
    if (!FLOAT_DTYPES.has(t.dtype)) throw new WeightsError(file, `tensor ${s.name} has dtype ${t.dtype}, expected a float type (F32 or F16)`);
    if (t.shape.join() !== s.shape.join())
      throw new WeightsError(file, `tensor ${s.name} has shape [${t.shape}], expected [${s.shape}]`);
    checkFinite(t.data, file, s.name);
    const n = s.shape.reduce((a, d) => a * d, 1);
    host.get(s.param)!.set(t.data, s.expert < 0 ? 0 : s.expert * n);
  }
  for (const [name, value] of Object.entries(BUFFERS)) {
    const t = byName.get(name);
    if (t && (t.data.length !== 1 || t.data[0] !== value[0]))
      throw new WeightsError(file, `buffer ${name} must be [${value[0]}], found [${[...t.data]}]`);
  }
  return new Map([...host].map(([name, data]) => [name, { shape: shapes.get(name)!, data }]));
}

/**
 * The tensors and metadata of a weights file: parameters under the reference's names (without prefix), with the
 * configuration in the metadata. `inferenceOnly` leaves out the gates' training-noise matrices (7 M values).
 */
export async function weightsToHost(
  params: ParamSet,
  cfg: FusionConfig = DEFAULT_CONFIG,
  opts: {
    metadata?: Record<string, string>;
    inferenceOnly?: boolean;
    /** More tensors stored beside the network's (the detectors'). */
    extraTensors?: Record<string, TensorToWrite>;
  } = {},
): Promise<{ tensors: Record<string, TensorToWrite>; metadata: Record<string, string> }> {
  const host = new Map<string, Float32Array>();
  for (const [name, t] of params) host.set(name, await t.data());
  const tensors: Record<string, TensorToWrite> = {};
  for (const s of stateDictSlots(cfg)) {
    if (opts.inferenceOnly && s.name.endsWith('.w_noise')) continue;
    const all = host.get(s.param);
    if (!all) throw new Error(`weights: parameter ${s.param} is missing`);
    const n = s.shape.reduce((a, d) => a * d, 1);
    tensors[s.name] = { shape: s.shape, data: s.expert < 0 ? all : all.slice(s.expert * n, (s.expert + 1) * n) };
  }
  for (const [name, value] of Object.entries(BUFFERS)) tensors[name] = { shape: [1], data: Float32Array.from(value) };
  Object.assign(tensors, opts.extraTensors);
  return { tensors, metadata: { format: 'pt', 'moefusion.config': configToMetadata(cfg), ...opts.metadata } };
}
