/**
 * GPU failures as the user meets them: a lost device becomes a DeviceLostError (promptly, not a hang) on the next
 * read, sync or dispatch; a request beyond the adapter's limits becomes a LimitError before anything is sent to
 * the GPU; and the CLI's error handler turns both into one line with the GPU exit code.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { gpu } from './helpers/gpu.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { DeviceLostError, LimitError } from '../src/runtime/errors.ts';
import { Tensor } from '../src/tensor/tensor.ts';
import { describeError, EXIT_GPU, reportFatal } from '../src/cli/errors.ts';
import { assertThrowsError } from './helpers/throws.ts';

const t = suite('device-errors');

const WRITE_ONE = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(1) fn main() { a[0] = 1.0; }`;

/** The error fn's promise rejects with, failing if it takes longer than `ms` (a hang). */
async function rejection(fn: () => Promise<unknown>, ms = 10_000): Promise<Error> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  try {
    await Promise.race([fn(), timeout]);
  } catch (e) {
    if ((e as Error).message.startsWith('no answer within')) throw e;
    return e as Error;
  } finally {
    clearTimeout(timer);
  }
  throw new Error('expected a rejection');
}

const thrown = (fn: () => unknown) => assertThrowsError(fn, /(?:)/);

t('a lost device: reads and syncs reject with DeviceLostError, later dispatches throw it', async () => {
  // A runtime of its own, so that the engine the other tests use stays alive.
  const rt = await Runtime.create();
  const buffer = rt.pool.acquire(1024);
  rt.dispatch({ label: 'write-one', key: 'write-one', code: WRITE_ONE, buffers: [buffer], workgroups: [1] });
  assert.equal([...new Float32Array(await rt.read(buffer, 0, 4))], [1], 'the runtime works before the loss');

  rt.device.destroy(); // what a driver reset or crash looks like to the runtime
  const onRead = await rejection(() => rt.read(buffer, 0, 4));
  assert.instance(onRead, DeviceLostError);
  assert.match(onRead.message, /^the GPU device was lost \(destroyed\)/);
  assert.instance(await rejection(() => rt.sync()), DeviceLostError);
  const onDispatch = thrown(() => rt.dispatch({ label: 'write-one', key: 'write-one', code: WRITE_ONE, buffers: [buffer], workgroups: [1] }));
  assert.instance(onDispatch, DeviceLostError, 'the loss is sticky');
  rt.destroy();
});

t('work recorded just before the loss fails at the next sync, not silently', async () => {
  const rt = await Runtime.create();
  const buffer = rt.pool.acquire(1024);
  rt.device.destroy();
  // The loss is reported asynchronously: recording may still succeed, the next wait must not.
  rt.dispatch({ label: 'write-one', key: 'write-one', code: WRITE_ONE, buffers: [buffer], workgroups: [1] });
  assert.instance(await rejection(() => rt.sync()), DeviceLostError);
  rt.destroy();
});

t('beyond the adapter: a tensor larger than one buffer and a grid wider than allowed are LimitErrors', async () => {
  const e = await gpu();
  const { maxBufferSize, maxComputeWorkgroupsPerDimension } = e.rt.limits;
  const elements = Math.ceil(maxBufferSize / 4) + 1024;
  const big = thrown(() => Tensor.empty([elements]));
  assert.instance(big, LimitError);
  assert.match(big.message, new RegExp(`a tensor of shape \\[${elements}\\] needs .* at most .* in one buffer`));

  const buffer = e.rt.pool.acquire(256);
  const wide = thrown(() => e.rt.dispatch({ label: 'write-one', key: 'write-one', code: WRITE_ONE, buffers: [buffer], workgroups: [maxComputeWorkgroupsPerDimension + 1] }));
  assert.instance(wide, LimitError);
  assert.match(wide.message, /kernel 'write-one': workgroup grid \d+×1×1 exceeds \d+ per dimension/);
  e.rt.pool.release(buffer);

  // Nothing reached the GPU: the engine carries on.
  const x = Tensor.fromArray(Float32Array.of(1, 2, 3), [3]);
  assert.equal([...(await x.data())], [1, 2, 3]);
  x.dispose();
});

t('the CLI reports both as one line with the GPU exit code', () => {
  const lost = describeError(new DeviceLostError('unknown', 'VK_ERROR_DEVICE_LOST\n  in vkQueueSubmit'));
  assert.is(lost.exitCode, EXIT_GPU);
  assert.match(lost.message, /^the GPU device was lost \(unknown\): VK_ERROR_DEVICE_LOST/);
  const limit = describeError(new LimitError('a tensor of shape [2147483648] needs 8.00 GiB, but this adapter allows at most 4.00 GiB in one buffer'));
  assert.equal(limit, { message: 'too large for this GPU: a tensor of shape [2147483648] needs 8.00 GiB, but this adapter allows at most 4.00 GiB in one buffer', exitCode: EXIT_GPU });

  const written: string[] = [];
  const write = process.stderr.write;
  const exitCode = process.exitCode;
  process.stderr.write = ((chunk: string) => {
    written.push(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.is(reportFatal(new DeviceLostError('unknown', 'VK_ERROR_DEVICE_LOST\n  in vkQueueSubmit')), EXIT_GPU);
  } finally {
    process.stderr.write = write;
    process.exitCode = exitCode;
  }
  assert.is(written.length, 1);
  assert.match(written[0], /^moefusion: the GPU device was lost \(unknown\): VK_ERROR_DEVICE_LOST in vkQueueSubmit\. Run again[^\n]*\n$/);
});

t.run();
