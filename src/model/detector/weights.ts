/**
 * The detectors' tensors in a safetensors file beside the fusion network's (names `detector.…`, including the
 * batch norms' running statistics), with the detector configuration in the metadata.
 */
import { Tensor, parameter } from '../../tensor/tensor.ts';
import { keep } from '../../tensor/engine.ts';
import type { SafetensorsFile } from '../../io/safetensors.ts';
import { DETECTOR_METADATA_KEY, detectorConfigFromJson, type DetectorConfig } from './config.ts';
import { detectorBufferShapes, detectorParamShapes, type DetectorTensors } from './parameters.ts';
import { checkFinite, WeightsError } from '../weights.ts';

export type HostTensors = Record<string, { shape: number[]; data: Float32Array }>;

/** Host copies of every detector tensor, and the metadata entry that describes them. */
export async function detectorToHost(t: DetectorTensors, cfg: DetectorConfig): Promise<{ tensors: HostTensors; metadata: Record<string, string> }> {
  const tensors: HostTensors = {};
  for (const [name, x] of [...t.params, ...t.buffers]) tensors[name] = { shape: [...x.shape], data: await x.data() };
  return { tensors, metadata: { [DETECTOR_METADATA_KEY]: JSON.stringify(cfg) } };
}

/** Whether a weights file carries a detector. */
export function hasDetector(file: SafetensorsFile): boolean {
  return DETECTOR_METADATA_KEY in file.metadata;
}

/**
 * The detector stored in a weights file; `prefix` is prepended to the names looked up (checkpoints store
 * parameters under `param/`). Every tensor is checked by name and shape.
 */
export function detectorFromFile(file: SafetensorsFile, source: string, prefix = ''): { tensors: DetectorTensors; config: DetectorConfig } {
  const json = file.metadata[DETECTOR_METADATA_KEY];
  if (!json) throw new Error(`${source} holds no detector (no '${DETECTOR_METADATA_KEY}' metadata): train one with --attention detector`);
  const config = detectorConfigFromJson(json, source);
  const read = (name: string, shape: number[]) => {
    const s = file.tensors.get(prefix + name);
    if (!s) throw new WeightsError(source, `the detector tensor ${prefix + name} is missing`);
    if (s.shape.join() !== shape.join()) throw new WeightsError(source, `${prefix + name} has shape [${s.shape}], expected [${shape}]`);
    checkFinite(s.data, source, prefix + name);
    return Tensor.fromArray(s.data, shape);
  };
  const expected = new Set([...detectorParamShapes(config).keys(), ...detectorBufferShapes(config).keys()].map((n) => prefix + n));
  const unknown = [...file.tensors.keys()].filter((n) => n.startsWith(prefix + 'detector.') && !expected.has(n));
  if (unknown.length) throw new WeightsError(source, `unexpected detector tensor(s): ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
  const params = new Map<string, Tensor>();
  for (const [name, shape] of detectorParamShapes(config)) params.set(name, parameter(read(name, shape), name));
  const buffers = new Map<string, Tensor>();
  for (const [name, shape] of detectorBufferShapes(config)) buffers.set(name, keep(read(name, shape)));
  return { tensors: { params, buffers }, config };
}

export function disposeDetector(t: DetectorTensors): void {
  for (const x of [...t.params.values(), ...t.buffers.values()]) x.dispose();
  t.params.clear();
  t.buffers.clear();
}
