/** Weights files in Node: read (weights.ts checks them) and written atomically, float32 or float16. */
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import { DEFAULT_CONFIG, type FusionConfig } from './config.ts';
import type { FusionNet } from './fusion-net.ts';
import { netFromStateDict, weightsFromFile, weightsToHost, type LoadOptions } from './weights.ts';

/** Reads a weights file into a network of a given configuration. */
export function loadWeights(file: string, cfg: FusionConfig = DEFAULT_CONFIG, opts: LoadOptions = {}): FusionNet {
  return netFromStateDict(readSafetensors(file).tensors, file, cfg, opts);
}

/** Reads a weights file with the configuration stored in its metadata (the reference's when absent). */
export function loadWeightsWithConfig(file: string): FusionNet {
  return weightsFromFile(readSafetensors(file), file);
}

/** Writes a network (and detectors) under the reference's names, float32 or float16, with the configuration in the metadata. */
export async function saveWeights(file: string, net: FusionNet, opts: Parameters<typeof weightsToHost>[1] & { dtype?: 'F32' | 'F16' } = {}): Promise<void> {
  const { tensors, metadata } = await weightsToHost(net, opts);
  writeSafetensors(file, tensors, { dtype: opts.dtype ?? 'F32', metadata });
}
