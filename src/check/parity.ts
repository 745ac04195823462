/**
 * The whole fusion network against PyTorch: the fixture fixtures/moe-fusion-small.safetensors, written by
 * bench/reference/make_fixtures.py, holds a small network's weights, inputs, fixed gate noise and PyTorch's results
 * computed in float64 (fused images, gate decisions, loads, losses and the gradient of every parameter). Shared by
 * `moefusion selftest` and test/model-parity.test.ts.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors } from '../io/safetensors-file.ts';
import type { SafetensorsFile } from '../io/safetensors.ts';
import { Tensor } from '../tensor/tensor.ts';
import { noGrad, tidy } from '../tensor/engine.ts';
import { backward } from '../autograd/tape.ts';
import { configFromMetadata, type FusionConfig } from '../model/config.ts';
import type { FusionNet } from '../model/fusion-net.ts';
import { netFromStateDict } from '../model/weights.ts';
import { sizeOf } from '../model/parameters.ts';
import { fusionLosses } from '../model/losses.ts';
import { compareExact, compareValues, type Comparison } from './compare.ts';

/** The shipped fixture, from the package root (src/check → ../..; the bundle keeps this depth). */
export const PARITY_FIXTURE = resolve(import.meta.dirname, '../../fixtures/moe-fusion-small.safetensors');

/** Relative error allowed against PyTorch's float64 results (float32 on the GPU). */
export const PARITY_TOLERANCE = 1e-4;

/** Our gate names and the reference's. */
const GATES = [
  ['fg', 'moe_fg'],
  ['bg', 'moe_bg'],
  ['global', 'DecoderMoE'],
] as const;

export interface ParityFixture {
  path: string;
  file: SafetensorsFile;
  cfg: FusionConfig;
}

export class FixtureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FixtureError';
  }
}

export function readParityFixture(path: string = PARITY_FIXTURE): ParityFixture {
  if (!existsSync(path) || statSync(path).isDirectory())
    throw new FixtureError(`${path}: no such file (the PyTorch parity fixture, fixtures/moe-fusion-small.safetensors of the repository)`);
  const file = readSafetensors(path);
  if (!file.tensors.has('expected.infer.fused'))
    throw new FixtureError(`${path}: not a parity fixture (no expected.infer.fused; write one with bench/reference/make_fixtures.py)`);
  return { path, file, cfg: configFromMetadata(file.metadata['moefusion.config'], path) };
}

function stored(fx: ParityFixture, key: string): { data: Float32Array; shape: number[] } {
  const v = fx.file.tensors.get(key);
  if (!v) throw new FixtureError(`${fx.path} lacks ${key}`);
  return { data: v.data, shape: [...v.shape] };
}

const upload = (fx: ParityFixture, key: string) => {
  const v = stored(fx, key);
  return Tensor.fromArray(v.data, v.shape);
};

/** Disposes every tensor in a result (nested objects of tensors). */
function disposeTensors(value: unknown): void {
  if (value instanceof Tensor) {
    if (!value.disposed) value.dispose();
  } else if (value && typeof value === 'object') for (const v of Object.values(value)) disposeTensors(v);
}

const close = (fx: ParityFixture, actual: Float32Array, key: string): Comparison => compareValues(key, actual, stored(fx, key).data, PARITY_TOLERANCE);

/**
 * Inference: the fused images, and per gate its gates, chosen experts, importance and load. The network is the
 * fixture's own unless `weights` (another network, e.g. the shipped weights) is given; the caller keeps it.
 */
export async function inferenceParity(fx: ParityFixture, weights?: FusionNet): Promise<Comparison[]> {
  const net = weights ?? fixtureNet(fx);
  try {
    const out = noGrad(() => tidy(() => net.forward(upload(fx, 'input.ir'), upload(fx, 'input.vis'), upload(fx, 'input.att'))));
    const list: Comparison[] = [close(fx, await out.fused.data(), 'expected.infer.fused')];
    for (const [ours, theirs] of GATES) {
      const g = out.gates[ours];
      list.push(close(fx, await g.gates.data(), `expected.infer.${theirs}.gates`));
      list.push(compareExact(`expected.infer.${theirs}.top_indices`, await g.topIndices.u32(), stored(fx, `expected.infer.${theirs}.top_indices`).data));
      list.push(close(fx, await g.importance.data(), `expected.infer.${theirs}.importance`));
      // The shipped weights' fixture has no inference load (see bench/reference/shipped_parity.py).
      if (fx.file.tensors.has(`expected.infer.${theirs}.load`)) list.push(close(fx, await g.load.data(), `expected.infer.${theirs}.load`));
    }
    disposeTensors(out);
    return list;
  } finally {
    if (!weights) net.dispose();
  }
}

const fixtureNet = (fx: ParityFixture) => netFromStateDict(fx.file.tensors, fx.path, fx.cfg, { ignoreUnknown: true });

/**
 * A training step with the fixture's gate noise: fused images, gate decisions, loads, importances, the auxiliary,
 * gradient, pixel and total losses, and the gradient of every parameter of the reference's state dict.
 */
export async function trainingParity(fx: ParityFixture): Promise<{ comparisons: Comparison[]; gradients: number }> {
  const net = fixtureNet(fx);
  try {
    const res = tidy(() => {
      const ir = upload(fx, 'input.ir');
      const vis = upload(fx, 'input.vis');
      const out = net.forward(ir, vis, upload(fx, 'input.att'), {
        train: true,
        noise: { fg: upload(fx, 'input.noise.moe_fg'), bg: upload(fx, 'input.noise.moe_bg'), global: upload(fx, 'input.noise.DecoderMoE') },
      });
      const losses = fusionLosses(fx.cfg, out.fused, vis, ir, { mask: upload(fx, 'input.mask') }, out.auxLoss);
      return { out, losses };
    });
    const list: Comparison[] = [close(fx, await res.out.fused.data(), 'expected.train.fused')];
    for (const [ours, theirs] of GATES) {
      const g = res.out.gates[ours];
      list.push(compareExact(`expected.train.${theirs}.top_indices`, await g.topIndices.u32(), stored(fx, `expected.train.${theirs}.top_indices`).data));
      list.push(close(fx, await g.gates.data(), `expected.train.${theirs}.gates`));
      list.push(close(fx, await g.load.data(), `expected.train.${theirs}.load`));
      list.push(close(fx, await g.importance.data(), `expected.train.${theirs}.importance`));
      list.push(close(fx, await g.auxLoss.data(), `expected.train.${theirs}.aux_loss`));
    }
    list.push(close(fx, Float32Array.of(fx.cfg.gradWeight * (await res.losses.grad.item())), 'expected.train.loss.grad'));
    list.push(close(fx, Float32Array.of(fx.cfg.pixelWeight * (await res.losses.pixel.item())), 'expected.train.loss.pixel'));
    list.push(close(fx, await res.losses.total.data(), 'expected.train.loss.total'));

    backward(res.losses.total);
    const grads = await Promise.all(net.params.entries.map(({ value: p }) => (p.grad ? p.grad.data() : new Float32Array(p.size))));
    let gradients = 0;
    for (const s of net.params.map((_, __, i) => grads[i]).stateDict())
      if ('spec' in s) {
        list.push(close(fx, s.value.subarray(s.offset, s.offset + sizeOf(s.shape)), `grad.${s.name}`));
        gradients++;
      }
    disposeTensors(res);
    return { comparisons: list, gradients };
  } finally {
    net.dispose();
  }
}
