/**
 * The ONNX export (src/model/onnx-export.ts) run by onnxruntime-node's CPU provider against PyTorch's float64 results
 * (the parity fixtures) and against the engine (Fuser.fuse): the small fixture network, whose gates route the two
 * pairs to different experts of both modalities, and the shipped weights; one model at several sizes; every opset
 * offered; the model's declared inputs, output and metadata; what the export refuses.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { gpu } from './helpers/gpu.ts';
import { writeFixtureWeights } from './helpers/weights.ts';
import { DEFAULT_WEIGHTS } from '../src/cli/defaults.ts';
import { exportOnnx, fusionOnnx, MAX_OPSET, MIN_OPSET } from '../src/model/onnx-export.ts';
import { hostWeightsFromFile } from '../src/model/weights.ts';
import { WeightsError } from '../src/model/state-dict.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { SafetensorsError } from '../src/io/safetensors.ts';
import { PARITY_FIXTURE, PARITY_TOLERANCE } from '../src/check/parity.ts';
import { maxRelError } from '../src/check/compare.ts';
import { Fuser } from '../src/model/fuser.ts';
import { Rng } from '../src/util/rng.ts';

const SHIPPED_PARITY = join(import.meta.dirname, '../fixtures/shipped-parity.safetensors');
const ort = await import('onnxruntime-node');
const t = suite('onnx export');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-onnx-'));
const small = join(dir, 'small.safetensors');
const sessions = new Map<string, Promise<InferenceSession>>();

/** One onnxruntime CPU session per weights file and opset. */
function session(weights: string, opset?: number): Promise<InferenceSession> {
  const key = `${weights}@${opset}`;
  if (!sessions.has(key)) sessions.set(key, exportOnnx(weights, { opset }).then((bytes) => ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] })));
  return sessions.get(key)!;
}

async function runOnnx(s: InferenceSession, ir: Float32Array, vis: Float32Array, att: Float32Array, W: number, H: number): Promise<Float32Array> {
  const feed = (d: Float32Array) => new ort.Tensor('float32', d, [1, 1, H, W]);
  const out = (await s.run({ ir: feed(ir), vis: feed(vis), attention: feed(att) })).fused as OrtTensor;
  assert.equal(out.dims, [1, 1, H, W], 'fused is [1, 1, H, W]');
  return out.data as Float32Array;
}

/** Pair b of a fixture's batch of inputs (B, 1, H, W). */
function fixturePair(path: string, b: number) {
  const f = readSafetensors(path);
  const [, , H, W] = f.tensors.get('input.ir')!.shape;
  const n = H * W;
  const at = (name: string) => f.tensors.get(name)!.data.slice(b * n, (b + 1) * n);
  return { W, H, ir: at('input.ir'), vis: at('input.vis'), att: at('input.att'), fused: at('expected.infer.fused'), file: f };
}

t.before(async () => {
  await gpu();
  writeFixtureWeights(small);
});

t.after(async () => {
  for (const s of sessions.values()) await (await s).release();
  rmSync(dir, { recursive: true, force: true });
});

t('small fixture network: onnxruntime reproduces PyTorch (float64) on both pairs, routed to different experts', async () => {
  const s = await session(small);
  const chosen = new Set<string>();
  for (const b of [0, 1]) {
    const p = fixturePair(PARITY_FIXTURE, b);
    const top = (gate: string) => [...p.file.tensors.get(`expected.infer.${gate}.top_indices`)!.data.slice(2 * b, 2 * b + 2)];
    chosen.add(`${top('moe_fg')}|${top('moe_bg')}|${top('DecoderMoE')}`);
    const out = await runOnnx(s, p.ir, p.vis, p.att, p.W, p.H);
    const err = maxRelError(out, p.fused);
    assert.ok(err <= PARITY_TOLERANCE, `pair ${b}: relative error ${err.toExponential(2)} against PyTorch`);
  }
  // The comparison covers routing: the two pairs take different experts, visible and infrared ones.
  assert.is(chosen.size, 2, 'the pairs are routed differently');
});

t('small fixture weights at 160×120 and 97×61 (one model, any size): onnxruntime matches Fuser.fuse', async () => {
  const s = await session(small);
  const fuser = await Fuser.create({ weights: small });
  try {
    for (const [W, H] of [
      [160, 120],
      [97, 61],
    ]) {
      const r = new Rng(W);
      const [ir, vis, att] = [r.uniform(W * H, 0, 1), r.uniform(W * H, 0, 1), r.uniform(W * H, 0, 1)];
      const engine = (await fuser.fuse({ width: W, height: H, data: ir }, { width: W, height: H, data: vis }, { attention: att })).data;
      const err = maxRelError(await runOnnx(s, ir, vis, att, W, H), engine);
      assert.ok(err <= PARITY_TOLERANCE, `${W}×${H}: relative error ${err.toExponential(2)} against the engine`);
    }
  } finally {
    fuser.dispose();
  }
});

t('shipped weights at 160×120: onnxruntime matches PyTorch (float64) and Fuser.fuse, with Att and with 0.5', async () => {
  const s = await session(DEFAULT_WEIGHTS);
  const fuser = await Fuser.create({ weights: DEFAULT_WEIGHTS });
  try {
    for (const b of [0, 1]) {
      const p = fixturePair(SHIPPED_PARITY, b);
      const gray = (data: Float32Array) => ({ width: p.W, height: p.H, data });
      const out = await runOnnx(s, p.ir, p.vis, p.att, p.W, p.H);
      const torchErr = maxRelError(out, p.fused);
      assert.ok(torchErr <= PARITY_TOLERANCE, `pair ${b}: relative error ${torchErr.toExponential(2)} against PyTorch`);
      const engine = (await fuser.fuse(gray(p.ir), gray(p.vis), { attention: p.att })).data;
      assert.ok(maxRelError(out, engine) <= PARITY_TOLERANCE, `pair ${b}: relative error ${maxRelError(out, engine).toExponential(2)} against the engine`);
      const half = new Float32Array(p.W * p.H).fill(0.5);
      const none = (await fuser.fuse(gray(p.ir), gray(p.vis), { attention: 'none' })).data;
      const err = maxRelError(await runOnnx(s, p.ir, p.vis, half, p.W, p.H), none);
      assert.ok(err <= PARITY_TOLERANCE, `pair ${b}, Att 0.5: relative error ${err.toExponential(2)} against the engine`);
    }
  } finally {
    fuser.dispose();
  }
});

t(`opsets ${MIN_OPSET} and ${MAX_OPSET} (reductions with axes as attribute and as input) give the default's output`, async () => {
  const p = fixturePair(PARITY_FIXTURE, 0);
  const base = await runOnnx(await session(small), p.ir, p.vis, p.att, p.W, p.H);
  for (const opset of [MIN_OPSET, MAX_OPSET]) {
    const out = await runOnnx(await session(small, opset), p.ir, p.vis, p.att, p.W, p.H);
    assert.ok(maxRelError(out, base) <= 1e-6, `opset ${opset}`);
  }
});

t('the model declares ir, vis, attention and fused as float32 [1, 1, height, width] and records config and Att mode', async () => {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(await exportOnnx(readFileSync(DEFAULT_WEIGHTS)));
  const graph = onnx.GraphProto.create(model.graph!);
  const describe = (v: onnxProto.onnx.IValueInfoProto) =>
    `${v.name}:${v.type!.tensorType!.elemType}:${v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || String(d.dimValue)).join(',')}`;
  const float = onnx.TensorProto.DataType.FLOAT;
  assert.equal(graph.input.map(describe), ['ir', 'vis', 'attention'].map((n) => `${n}:${float}:1,1,height,width`));
  assert.equal(graph.output.map(describe), [`fused:${float}:1,1,height,width`]);
  assert.equal(model.opsetImport.map((o) => Number(o.version)), [17]);
  const meta = Object.fromEntries(model.metadataProps.map((e) => [e.key, e.value]));
  assert.is(meta['moefusion.attention'], 'saliency');
  assert.equal(JSON.parse(meta['moefusion.config']).global_grid, [60, 80]);
  const ops = new Set(graph.node.map((n) => n.opType));
  for (const op of ['TopK', 'Gather', 'Resize', 'Softmax']) assert.ok(ops.has(op), `routing uses ${op}`);
  assert.not.ok(graph.initializer.some((i) => i.name!.endsWith('w_noise')), 'the training-only noise matrices are left out');
});

t('refused: a network larger than a model can hold (naming the file), an unknown opset, a file that is not weights', async () => {
  const { params, config } = hostWeightsFromFile(readSafetensors(small), small);
  assert.throws(() => fusionOnnx(params, config, { source: small, maxBytes: 1e6 }), (e: Error) => e instanceof WeightsError && e.message.includes(small) && /MiB of float32 weights, more than .*gate grids 8x6 and 4x3/.test(e.message));
  for (const opset of [MIN_OPSET - 1, MAX_OPSET + 1, 17.5]) {
    let error: unknown;
    await exportOnnx(small, { opset }).catch((e: unknown) => (error = e));
    assert.ok(error instanceof RangeError && error.message.includes(`opset ${opset} is not supported`), String(error));
  }
  let notWeights: unknown;
  await exportOnnx(new TextEncoder().encode('not a safetensors file')).catch((e: unknown) => (notWeights = e));
  assert.ok(notWeights instanceof SafetensorsError, String(notWeights));
});

t.run();
