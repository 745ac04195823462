/** Weights files for the tests that fuse through the CLI or the library. */
import { Tensor } from '../../src/tensor/tensor.ts';
import { engine } from '../../src/tensor/engine.ts';
import { DEFAULT_CONFIG, type FusionConfig } from '../../src/model/config.ts';
import { FusionNet, fusionLayout } from '../../src/model/fusion-net.ts';
import { stateDictNames } from '../../src/model/parameters.ts';
import { saveWeights } from '../../src/model/weights-file.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors-file.ts';
import { PARITY_FIXTURE } from '../../src/check/parity.ts';
import type { Rng } from '../../src/util/rng.ts';

/** The reference network with small gate grids: a small weights file (the fuser reads the configuration from it). */
export const SMALL_GATES: FusionConfig = { ...DEFAULT_CONFIG, localGate: [6, 8], globalGate: [3, 4] };

/**
 * Writes fresh weights of cfg (initialisation seed `seed`) whose gate matrices are drawn from rng (N(0, 0.05)) instead
 * of zero, so that the gates route between experts as trained ones do.
 */
export async function writeRoutingWeights(path: string, cfg: FusionConfig, seed: number, rng: Rng): Promise<void> {
  const net = FusionNet.init(cfg, seed);
  for (const { w_gate: p } of Object.values(net.mixtures)) {
    const fresh = Tensor.fromArray(rng.normal(p.size, 0.05), p.shape);
    engine().rt.copy(fresh.buffer, 0, p.buffer, 0, p.bytes);
    fresh.dispose();
  }
  await saveWeights(path, net);
  net.dispose();
}

/**
 * Writes the network of the PyTorch parity fixture (fixtures/moe-fusion-small.safetensors: small gate grids, gates
 * that route) as a plain weights file, as `train` writes one (network tensors and configuration), without the GPU.
 */
export function writeFixtureWeights(path: string): void {
  const fixture = readSafetensors(PARITY_FIXTURE);
  const names = new Set(stateDictNames(fusionLayout(DEFAULT_CONFIG)));
  const tensors = Object.fromEntries([...fixture.tensors].filter(([name]) => names.has(name)).map(([name, t]) => [name, { shape: t.shape, data: t.data }]));
  writeSafetensors(path, tensors, { metadata: { format: 'pt', 'moefusion.config': fixture.metadata['moefusion.config'] } });
}
