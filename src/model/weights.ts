/**
 * Weights under the reference's state-dict names (docs/moe-fusion.md §9), so a file moves between this project and a
 * PyTorch model laid out like the reference. Names may carry the reference's `fusion_head.` prefix. Loading checks
 * every name, shape, dtype and value and says which tensor is wrong (state-dict.ts). This file works on parsed
 * safetensors on every platform; weights-file.ts reads and writes files in Node.
 */
import { parseSafetensors, type SafetensorsFile, type StoredTensor, type TensorToWrite } from '../io/safetensors.ts';
import { DEFAULT_CONFIG, configFromMetadata, configToMetadata, type FusionConfig } from './config.ts';
import { FusionNet, fusionLayout, type FusionLayout } from './fusion-net.ts';
import { uploadTensor, type ParamTree } from './parameters.ts';
import { readBack, readStateDict, writeStateDict, WeightsError, type HostTensor } from './state-dict.ts';
import { DETECTOR_METADATA_KEY } from './detector/config.ts';
import type { Detector } from './detector/network.ts';
import { detectorToHost } from './detector/weights.ts';

const PREFIX = 'fusion_head.';

/** The network's tensors in CPU memory, checked: what needs no GPU (the ONNX export). */
export type HostWeights = ParamTree<FusionLayout, HostTensor>;

/** The network of a parsed weights file, with its stored configuration (the reference's when none is) unless `cfg` is given. */
export function weightsFromFile(file: SafetensorsFile, source: string, cfg?: FusionConfig): FusionNet {
  const { params, config } = hostWeightsFromFile(file, source, cfg);
  return upload(params, config);
}

/** The same, checked, in CPU memory. */
export function hostWeightsFromFile(file: SafetensorsFile, source: string, cfg?: FusionConfig): { params: HostWeights; config: FusionConfig } {
  const config = cfg ?? configFromMetadata(file.metadata['moefusion.config'], source);
  const stray = [...file.tensors.keys()].find((n) => n.startsWith('detector.'));
  if (stray && !(DETECTOR_METADATA_KEY in file.metadata))
    throw new WeightsError(source, `tensor ${stray} belongs to a detector, but the file has no '${DETECTOR_METADATA_KEY}' metadata describing one`);
  return { params: hostParamsFromStateDict(file.tensors, source, config), config };
}

/** The same from a weights file's bytes. */
export function weightsFromBytes(bytes: Uint8Array, source: string, cfg?: FusionConfig): FusionNet {
  return weightsFromFile(parseSafetensors(bytes, source), source, cfg);
}

export interface LoadOptions {
  /** Ignore tensors that are not part of the fusion network (fixtures carry inputs and expected values). */
  ignoreUnknown?: boolean;
}

/** The network of state-dict tensors; `file` names the source in errors. */
export function netFromStateDict(stored: ReadonlyMap<string, StoredTensor>, file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): FusionNet {
  return upload(hostParamsFromStateDict(stored, file, cfg, opts), cfg);
}

const upload = (host: HostWeights, config: FusionConfig) => new FusionNet(config, host.map((t, spec) => uploadTensor(t.data, spec)));

/** netFromStateDict's checks and layout, in CPU memory. The detectors' tensors may share the file (detector/weights.ts reads them). */
export function hostParamsFromStateDict(stored: ReadonlyMap<string, StoredTensor>, file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): HostWeights {
  const byName = new Map<string, StoredTensor>();
  for (const [name, t] of stored) {
    const bare = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
    if (byName.has(bare)) throw new WeightsError(file, `tensor ${bare} appears twice (with and without the ${PREFIX} prefix)`);
    byName.set(bare, t);
  }
  return readStateDict(fusionLayout(cfg), byName, file, { owns: (name) => !name.startsWith('detector.'), ignoreUnknown: opts.ignoreUnknown });
}

/**
 * The tensors and metadata of a weights file: the network's tensors under the reference's names (without prefix),
 * with the configuration in the metadata, and the detectors' when given. `inferenceOnly` leaves out the gates'
 * training-noise matrices (7 M values).
 */
export async function weightsToHost(
  net: FusionNet,
  opts: { metadata?: Record<string, string>; inferenceOnly?: boolean; detector?: Detector | null } = {},
): Promise<{ tensors: Record<string, TensorToWrite>; metadata: Record<string, string> }> {
  const tensors = writeStateDict(await readBack(net.params), opts);
  const detector = opts.detector ? await detectorToHost(opts.detector) : null;
  return {
    tensors: { ...tensors, ...detector?.tensors },
    metadata: { format: 'pt', 'moefusion.config': configToMetadata(net.config), ...opts.metadata, ...detector?.metadata },
  };
}
