/**
 * A layout's state dict in weights files (model/parameters.ts): reading checks every name, dtype, shape and value
 * (NaN and infinities are refused) and says which tensor is wrong; writing slices stacked tensors into the
 * reference's entries. The fusion network (weights.ts) and the detectors (detector/weights.ts) share it.
 */
import type { StoredTensor, TensorToWrite } from '../io/safetensors.ts';
import { ParamTree, sizeOf, type Group } from './parameters.ts';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export class WeightsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'WeightsError';
  }
}

/** A tensor in CPU memory, named as in the engine. */
export interface HostTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Refuses NaN and infinities, naming the tensor and the first bad element. */
export function checkFinite(data: Float32Array, source: string, name: string): void {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i])) throw new WeightsError(source, `tensor ${name} holds ${data[i]} at element ${i}; weights must be finite`);
}

const listSome = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`;

export interface ReadOptions {
  /** Which of the file's other tensors are this layout's own kind (so unexpected), the rest belonging to others. */
  owns: (name: string) => boolean;
  /** Ignore unexpected tensors (fixtures carry inputs and expected values). */
  ignoreUnknown?: boolean;
}

/**
 * A layout's tensors from stored ones (by state-dict name), every entry checked; `source` names the file in errors.
 * Training-only tensors may all be left out (inference-only files): they start at zero.
 */
export function readStateDict<L extends Group>(layout: L, stored: ReadonlyMap<string, StoredTensor>, source: string, opts: ReadOptions): ParamTree<L, HostTensor> {
  const host = new ParamTree(layout, ({ name, shape }) => ({ name, shape, data: new Float32Array(sizeOf(shape)) }));
  const slots = host.stateDict();
  const trainingOnly = slots.flatMap((s) => ('spec' in s && s.spec.leaf.trainingOnly ? [s.name] : []));
  const allTrainingOnlyMissing = trainingOnly.every((n) => !stored.has(n));
  const missing = slots.filter((s) => 'spec' in s && !stored.has(s.name) && !(allTrainingOnlyMissing && s.spec.leaf.trainingOnly)).map((s) => s.name);
  if (missing.length) throw new WeightsError(source, `missing ${missing.length} tensor(s): ${listSome(missing)}`);
  const expected = new Set(slots.map((s) => s.name));
  const unexpected = [...stored.keys()].filter((n) => !expected.has(n) && opts.owns(n));
  if (unexpected.length && !opts.ignoreUnknown) throw new WeightsError(source, `unexpected tensor(s): ${listSome(unexpected)}`);
  for (const s of slots) {
    const t = stored.get(s.name);
    if (!t) continue; // an omitted training-only tensor stays zero
    if ('constant' in s) {
      const want = s.constant.values;
      if (t.data.length !== want.length || t.data.some((v, i) => v !== want[i])) throw new WeightsError(source, `buffer ${s.name} must be [${want}], found [${[...t.data]}]`);
      continue;
    }
    if (!FLOAT_DTYPES.has(t.dtype)) throw new WeightsError(source, `tensor ${s.name} has dtype ${t.dtype}, expected a float type (F32 or F16)`);
    if (t.shape.join() !== s.shape.join()) throw new WeightsError(source, `tensor ${s.name} has shape [${t.shape}], expected [${s.shape}]`);
    checkFinite(t.data, source, s.name);
    s.value.data.set(t.data, s.offset);
  }
  return host;
}

/** The state dict of values in CPU memory, constants included; `inferenceOnly` leaves out training-only tensors. */
export function writeStateDict<L extends Group>(host: ParamTree<L, Float32Array>, opts: { inferenceOnly?: boolean } = {}): Record<string, TensorToWrite> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const s of host.stateDict()) {
    if ('constant' in s) tensors[s.name] = { shape: [s.constant.values.length], data: Float32Array.from(s.constant.values) };
    else if (!(opts.inferenceOnly && s.spec.leaf.trainingOnly)) {
      const n = sizeOf(s.shape);
      tensors[s.name] = { shape: s.shape, data: s.value.length === n ? s.value : s.value.slice(s.offset, s.offset + n) };
    }
  }
  return tensors;
}

/** A GPU model's values read back into CPU memory. */
export async function readBack<L extends Group>(params: ParamTree<L>): Promise<ParamTree<L, Float32Array>> {
  const data = await Promise.all(params.entries.map((e) => e.value.data()));
  return params.map((_, __, i) => data[i]);
}
