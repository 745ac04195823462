/**
 * The detectors' tensors in a safetensors file beside the fusion network's (names `detector.…`, including the
 * batch norms' running statistics), with the detector configuration in the metadata.
 */
import type { SafetensorsFile, TensorToWrite } from '../../io/safetensors.ts';
import { DETECTOR_METADATA_KEY, detectorConfigFromJson } from './config.ts';
import { Detector, detectorLayout } from './network.ts';
import { uploadTensor } from '../parameters.ts';
import { readBack, readStateDict, writeStateDict } from '../state-dict.ts';

/** Host copies of every detector tensor, and the metadata entry that describes them. */
export async function detectorToHost(detector: Detector): Promise<{ tensors: Record<string, TensorToWrite>; metadata: Record<string, string> }> {
  return { tensors: writeStateDict(await readBack(detector.params)), metadata: { [DETECTOR_METADATA_KEY]: JSON.stringify(detector.config) } };
}

/** Whether a weights file carries a detector. */
export function hasDetector(file: SafetensorsFile): boolean {
  return DETECTOR_METADATA_KEY in file.metadata;
}

/** The detector stored in a weights file, every tensor checked (state-dict.ts). */
export function detectorFromFile(file: SafetensorsFile, source: string): Detector {
  const json = file.metadata[DETECTOR_METADATA_KEY];
  if (!json) throw new Error(`${source} holds no detector (no '${DETECTOR_METADATA_KEY}' metadata): train one with --attention detector`);
  const config = detectorConfigFromJson(json, source);
  const host = readStateDict(detectorLayout(config), file.tensors, source, { owns: (name) => name.startsWith('detector.') });
  return new Detector(config, host.map((t, spec) => uploadTensor(t.data, spec)));
}
