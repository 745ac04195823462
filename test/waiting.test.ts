/**
 * Waiting for the GPU without stopping JavaScript (the progress of one large image, Ctrl-C, timers): kernels compile
 * asynchronously, the commands recorded behind a compiling kernel keep their order, Dawn's polling is paced, and a
 * terminal progress bar moves its clock on its own timer between the stages it is told about.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { SMALL_GATES } from './helpers/weights.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { FORWARD_STAGES, FusionNet } from '../src/model/fusion-net.ts';
import { saveWeights } from '../src/model/weights-file.ts';
import { Fuser } from '../src/model/fuser.ts';
import { IMMEDIATE_POLLS, isDawnPoll, pollCounts } from '../src/runtime/dawn-polling.ts';
import { createProgress } from '../src/cli/progress.ts';

const t = suite('waiting');

/** A kernel no other test compiles: adds `k` to every element of its buffer. */
function addKernel(k: number): string {
  return `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
// waiting.test ${k} ${Math.random()}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&x)) { x[g.x] = x[g.x] + ${k}.0; }
}`;
}

t('a new kernel compiles without the synchronous call; commands recorded behind it keep their order', async () => {
  const { rt } = await gpu();
  const device = rt.device as GPUDevice & { createComputePipeline: GPUDevice['createComputePipeline'] };
  const synchronous = device.createComputePipeline;
  // lavapipe compiles under the lock of its queue: the synchronous call waits for the GPU with JavaScript stopped.
  device.createComputePipeline = () => {
    throw new Error('the synchronous createComputePipeline was called: it stops JavaScript until the GPU is idle');
  };
  try {
    const values = Float32Array.from([1, 2, 3, 4]);
    const x = Tensor.fromArray(values, [4]);
    const copy = Tensor.zeros([4]);
    rt.dispatch({ label: 'waiting_add', key: 'waiting_add 10', code: addKernel(10), buffers: [x.buffer], workgroups: [1] });
    assert.ok(rt.pipelines.pending > 0, 'dispatch() returned while its kernel compiles');
    // Behind the compiling kernel: a copy of its result, then a new upload into the same buffer (whose source
    // array then changes): each must happen in recording order, with the values given at the time.
    rt.copy(x.buffer, 0, copy.buffer, 0, 16);
    const later = Float32Array.from([7, 7, 7, 7]);
    rt.upload(x.buffer, 0, later);
    later.fill(-1);
    rt.dispatch({ label: 'waiting_add', key: 'waiting_add 100', code: addKernel(100), buffers: [x.buffer], workgroups: [1] });
    assert.equal([...(await copy.data())], [11, 12, 13, 14], 'the copy saw the first kernel on the first upload');
    assert.equal([...(await x.data())], [107, 107, 107, 107], 'the second upload, then the second kernel');
    assert.is(rt.pipelines.pending, 0);
    x.dispose();
    copy.dispose();
  } finally {
    device.createComputePipeline = synchronous;
  }
});

t("Dawn's poll callbacks are told apart from other callbacks", () => {
  assert.not.ok(isDawnPoll(() => {}), 'an arrow function');
  assert.not.ok(isDawnPoll(function named() {}), 'a named function');
  let resolve: unknown;
  void new Promise((r) => (resolve = r));
  assert.not.ok(isDawnPoll(resolve), "a promise's resolve function (native, nameless, one parameter)");
  assert.not.ok(isDawnPoll(Math.max), 'a named native function');
});

t('a long wait for the GPU is polled from a timer after its first polls, not from setImmediate throughout', async () => {
  const { rt } = await gpu();
  // Enough work that the wait outlasts the immediate polls on a software driver: a kernel looping per element.
  const x = Tensor.zeros([1 << 20]);
  const code = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x + g.y * 65535u * 64u;
  if (i >= arrayLength(&x)) { return; }
  var v = x[i];
  for (var k = 0u; k < 2000u; k++) { v = v * 0.999 + 1.0; }
  x[i] = v;
}`;
  rt.dispatch({ label: 'waiting_busy', key: 'waiting_busy', code, buffers: [x.buffer], workgroups: [(1 << 20) / 64 / 4, 4] });
  await rt.sync(); // compiled, so that the next wait is the kernel's alone
  const before = { ...pollCounts };
  rt.dispatch({ label: 'waiting_busy', key: 'waiting_busy', code, buffers: [x.buffer], workgroups: [(1 << 20) / 64 / 4, 4] });
  await rt.sync();
  const immediate = pollCounts.immediate - before.immediate;
  const timed = pollCounts.timed - before.timed;
  console.log(`  one wait: ${immediate} immediate polls, ${timed} from the timer`);
  // Paced: the burst is immediate, the rest of the wait comes from the timer (sync() waits once, so one burst).
  assert.ok(immediate + timed > 0, "Dawn's polls went through the pacing");
  assert.ok(immediate <= IMMEDIATE_POLLS, `${immediate} immediate polls`);
  assert.ok(timed > 0 || immediate < IMMEDIATE_POLLS, 'a wait longer than the burst continued on the timer');
  x.dispose();
});

/** A terminal that keeps what is written. */
function terminal(): Writable & { text: string; isTTY: true; columns: number } {
  const s = new Writable({
    write(chunk, _enc, done) {
      s.text += String(chunk);
      done();
    },
  }) as Writable & { text: string; isTTY: true; columns: number };
  s.text = '';
  s.isTTY = true;
  s.columns = 200;
  return s;
}

t('a fuse reports every stage the network marks, once and in order, out of the total FORWARD_STAGES counts', async () => {
  const { rt } = await gpu();
  const dir = mkdtempSync(join(tmpdir(), 'moefusion-stages-'));
  try {
    const weights = join(dir, 'w.safetensors');
    const net = FusionNet.init(SMALL_GATES, 1);
    await saveWeights(weights, net);
    net.dispose();
    const fuser = await Fuser.create({ weights });
    const seen: Array<[string, number, number]> = [];
    const gray = { width: 12, height: 10, data: new Float32Array(120).fill(0.5) };
    await fuser.fuse(gray, gray, { onStage: (stage, done, total) => seen.push([stage, done, total]) });
    await rt.sync();
    fuser.dispose();
    assert.equal(seen.map(([stage]) => stage), [...FORWARD_STAGES]);
    assert.equal(seen.map(([, done, total]) => [done, total]), FORWARD_STAGES.map((_, i) => [i + 1, FORWARD_STAGES.length]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('a terminal bar redraws its clock every second between stages (fake clock and timer)', () => {
  const stream = terminal();
  let clock = 0;
  const timers: Array<() => void> = [];
  let cleared = 0;
  const bar = createProgress(8, 'fusing', {
    stream,
    now: () => clock,
    every: (ms, fn) => {
      assert.is(ms, 1000);
      timers.push(fn);
      return () => cleared++;
    },
  });
  const shown = () => stream.text.split('\r').filter(Boolean).at(-1)!.replace('\x1b[K', '');
  assert.match(shown(), /^fusing \[░{30}\] 0\/8 \| 0s elapsed, ETA \? ?$/);
  bar.update(1, { stage: 'encoders' });
  assert.match(shown(), /1\/8 \| 0s elapsed.* \| stage encoders$/);
  // The GPU works on stage 2 for a minute: no stage ends, the timer fires, the clock moves.
  for (let s = 1; s <= 60; s++) {
    clock += 1000;
    timers[0]();
  }
  assert.match(shown(), /1\/8 \| 1m00s elapsed, ETA 7m00s \| stage encoders$/);
  assert.is(stream.text.split('\r').filter(Boolean).length, 62, 'one redraw per second (and the first two)');
  bar.update(2, { stage: 'encoder.moe_fg gate' });
  assert.match(shown(), /\[█{8}░{22}\] 2\/8/);
  bar.stop();
  bar.stop();
  assert.is(cleared, 1, 'the clock stops with the bar');
  assert.ok(stream.text.endsWith('\n'), 'the bar ends its line');
});

t.run();
