/**
 * Training checkpoints: one safetensors file holding the parameters (`param/…`), the detector's running statistics
 * (`buffer/…`), Adam's moments (`adam.m/…`, `adam.v/…`) and, in the `moefusion.checkpoint` metadata, the step, the
 * generator and data-order state, the network and detector configurations, the training options and the data the
 * run trains on. The metadata is parsed and checked in one place (readCheckpoint).
 */
import { engine } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors-file.ts';
import type { StoredTensor } from '../io/safetensors.ts';
import type { FusionConfig } from '../model/config.ts';
import { detectorConfigFromJson, type DetectorConfig } from '../model/detector/config.ts';
import type { Trainer } from './trainer.ts';
import { storedOptions, type TrainOptions } from './options.ts';
import { TrainingError } from './errors.ts';

export const CHECKPOINT_METADATA_KEY = 'moefusion.checkpoint';

/** What a run trains on: the data folders (absolute), the split, the validation share and both sides' pair names. */
export interface DataRecord {
  folders: string[];
  split: string | null;
  valFraction: number;
  train: string[];
  val: string[];
}

export interface CheckpointMeta {
  /** Steps done. */
  step: number;
  adamStep: number;
  /** State of the trainer's generator (data order, crops, gate noise). */
  rng: number;
  /** The current pass over the training samples and the position in it. */
  order: number[];
  cursor: number;
  config: FusionConfig;
  detector: DetectorConfig | null;
  options: TrainOptions;
  /** Absent in checkpoints written before the data was recorded. */
  data?: DataRecord;
}

export interface Checkpoint {
  file: string;
  meta: CheckpointMeta;
  tensors: Map<string, StoredTensor>;
}

const isInt = (v: unknown, min = 0): v is number => Number.isInteger(v) && (v as number) >= min;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isGrid = (v: unknown): boolean => Array.isArray(v) && v.length === 2 && v.every((x) => isInt(x, 1));
const isNames = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The first problem of a parsed metadata object, or null when it is a complete CheckpointMeta. */
function problemOf(m: Record<string, unknown>): string | null {
  for (const k of ['step', 'adamStep', 'rng', 'cursor'] as const) if (!isInt(m[k])) return `${k} is not a non-negative integer`;
  if (!Array.isArray(m.order) || !m.order.every((i) => isInt(i))) return 'order is not a list of sample indices';
  const c = m.config as Partial<FusionConfig> | undefined;
  if (typeof c !== 'object' || c === null) return 'config is missing';
  if (!isInt(c.experts, 1) || !isInt(c.k, 1) || !isGrid(c.localGate) || !isGrid(c.globalGate) || !isNum(c.gradWeight) || !isNum(c.pixelWeight))
    return 'config is incomplete';
  if (typeof c.auxCoef !== 'object' || c.auxCoef === null || !['fg', 'bg', 'global'].every((k) => isNum((c.auxCoef as Record<string, unknown>)[k])))
    return 'config.auxCoef is incomplete';
  if (typeof m.options !== 'object' || m.options === null) return 'options are missing';
  const d = m.data as Partial<DataRecord> | undefined;
  if (d !== undefined) {
    if (typeof d !== 'object' || d === null) return 'data is not an object';
    if (!isNames(d.folders) || !isNames(d.train) || !isNames(d.val) || !(d.split === null || typeof d.split === 'string') || !isNum(d.valFraction))
      return 'data is incomplete';
  }
  return null;
}

/** Reads a checkpoint and checks its metadata; a damaged or foreign file is named (and left as it is). */
export function readCheckpoint(file: string): Checkpoint {
  let contents: ReturnType<typeof readSafetensors>;
  try {
    contents = readSafetensors(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new TrainingError(`${file} does not exist`);
    throw new TrainingError(`${(e as Error).message} (the checkpoint is damaged; it was left as it is)`);
  }
  const text = contents.metadata[CHECKPOINT_METADATA_KEY];
  const foreign = (why: string) => new TrainingError(`${file} is not a moefusion training checkpoint (${why})`);
  if (!text) throw foreign(`no '${CHECKPOINT_METADATA_KEY}' metadata`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw foreign(`its '${CHECKPOINT_METADATA_KEY}' metadata is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw foreign(`its '${CHECKPOINT_METADATA_KEY}' metadata is not an object`);
  const m = parsed as Record<string, unknown>;
  const stored = typeof m.options === 'object' && m.options !== null ? storedOptions(m.options as Record<string, unknown>) : null;
  const problem = problemOf(m) ?? (stored && 'problem' in stored ? stored.problem : null);
  if (problem || !stored || !('options' in stored)) throw foreign(`in its '${CHECKPOINT_METADATA_KEY}' metadata, ${problem}`);
  let detector: DetectorConfig | null = null;
  if (m.detector !== null && m.detector !== undefined) {
    try {
      detector = detectorConfigFromJson(JSON.stringify(m.detector), file);
    } catch (e) {
      throw new TrainingError((e as Error).message);
    }
  }
  const meta = m as unknown as CheckpointMeta;
  return { file, meta: { ...meta, options: stored.options, detector }, tensors: contents.tensors };
}

/** Writes the trainer's parameters, optimizer moments, step and generator state, and `data`, atomically. */
export async function saveCheckpoint(file: string, trainer: Trainer, data?: DataRecord): Promise<void> {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  const named = trainer.parameters();
  for (const [name, t] of named) tensors[`param/${name}`] = { shape: [...t.shape], data: await t.data() };
  for (const [name, t] of trainer.buffers()) tensors[`buffer/${name}`] = { shape: [...t.shape], data: await t.data() };
  const state = await trainer.optimizer.exportState();
  named.forEach(([name, t], i) => {
    const shape = [...t.shape];
    tensors[`adam.m/${name}`] = { shape, data: state.m[i] };
    tensors[`adam.v/${name}`] = { shape, data: state.v[i] };
  });
  const { order, cursor } = trainer.batcher.state;
  const meta: CheckpointMeta = {
    step: trainer.step,
    adamStep: state.step,
    rng: trainer.rng.state,
    order,
    cursor,
    config: trainer.net.config,
    detector: trainer.detector?.config ?? null,
    options: trainer.opts,
    ...(data ? { data } : {}),
  };
  writeSafetensors(file, tensors, { dtype: 'F32', metadata: { [CHECKPOINT_METADATA_KEY]: JSON.stringify(meta) } });
}

/** Restores a checkpoint into a trainer of the same network layout (parameters keep their identity). */
export function restoreCheckpoint(trainer: Trainer, ck: Checkpoint): void {
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  const get = (key: string, t: Tensor) => {
    const s = ck.tensors.get(key);
    if (!s) throw new TrainingError(`${ck.file}: the checkpoint lacks ${key}`);
    if (s.shape.join() !== t.shape.join()) throw new TrainingError(`${ck.file}: ${key} has shape [${s.shape}], expected [${t.shape}]`);
    return s.data;
  };
  // Everything is looked up before anything changes.
  const named = trainer.parameters();
  const buffers = trainer.buffers();
  const values = named.map(([name, t]) => get(`param/${name}`, t));
  for (const [name, t] of named) {
    m.push(get(`adam.m/${name}`, t));
    v.push(get(`adam.v/${name}`, t));
  }
  const bufferValues = buffers.map(([name, t]) => get(`buffer/${name}`, t));
  trainer.batcher.state = { order: ck.meta.order, cursor: ck.meta.cursor };
  named.forEach(([, t], i) => {
    t.grad?.dispose();
    t.grad = null;
    copyInto(t, values[i]);
  });
  buffers.forEach(([, t], i) => copyInto(t, bufferValues[i]));
  trainer.optimizer.importState({ step: ck.meta.adamStep, m, v });
  trainer.step = ck.meta.step;
  trainer.rng.state = ck.meta.rng;
}

/** Overwrites a tensor's data in place (the optimizer holds the parameters themselves). */
function copyInto(dst: Tensor, data: Float32Array): void {
  const fresh = Tensor.fromArray(data, dst.shape);
  engine().rt.copy(fresh.buffer, 0, dst.buffer, 0, fresh.bytes);
  fresh.dispose();
}
