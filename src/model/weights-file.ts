/** Weights files in Node: read (weights.ts checks them) and written atomically, float32 or float16. */
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import type { TensorToWrite } from '../io/safetensors.ts';
import { DEFAULT_CONFIG, type FusionConfig } from './config.ts';
import type { ParamSet } from './parameters.ts';
import { paramsFromStateDict, weightsFromFile, weightsToHost, type LoadOptions } from './weights.ts';

/** Reads a weights file into engine parameters for a given configuration. */
export function loadWeights(file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): ParamSet {
  return paramsFromStateDict(readSafetensors(file).tensors, file, cfg, opts);
}

/** Reads a weights file with the configuration stored in its metadata (the reference's when absent). */
export function loadWeightsWithConfig(file: string): { params: ParamSet; config: FusionConfig } {
  return weightsFromFile(readSafetensors(file), file);
}

/** Writes parameters under the reference's names, float32 or float16 storage, with the configuration in the metadata. */
export async function saveWeights(
  file: string,
  params: ParamSet,
  cfg: FusionConfig = DEFAULT_CONFIG,
  opts: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string>; inferenceOnly?: boolean; extraTensors?: Record<string, TensorToWrite> } = {},
): Promise<void> {
  const { tensors, metadata } = await weightsToHost(params, cfg, opts);
  writeSafetensors(file, tensors, { dtype: opts.dtype ?? 'F32', metadata });
}
