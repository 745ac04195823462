/** The exact-resume check shared by the training tests. */
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FusionConfig } from '../../src/model/config.ts';
import { FusionNet } from '../../src/model/fusion-net.ts';
import { Trainer } from '../../src/train/trainer.ts';
import type { TrainOptions } from '../../src/train/options.ts';
import type { SampleSource } from '../../src/train/data.ts';
import { readCheckpoint, restoreCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.ts';

/**
 * Trains 3 steps, writes a checkpoint and trains 3 more; a trainer started from other weights and restored from the
 * checkpoint (as a new process would) must take the same 3 steps with identical losses, its options read back.
 */
export async function assertResumesExactly(config: FusionConfig, data: SampleSource, opts: TrainOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'moefusion-resume-'));
  try {
    const a = new Trainer(FusionNet.init(config, 2), data, opts);
    for (let i = 0; i < 3; i++) await a.trainStep();
    await saveCheckpoint(join(dir, 'ck.safetensors'), a);
    const rest: number[] = [];
    for (let i = 0; i < 3; i++) rest.push((await a.trainStep()).total);
    const b = new Trainer(FusionNet.init(config, 99), data, opts);
    const ck = readCheckpoint(join(dir, 'ck.safetensors'));
    assert.equal({ ...ck.meta.options }, { ...opts }, 'the options round-trip through the checkpoint');
    restoreCheckpoint(b, ck);
    assert.is(b.step, 3);
    const resumed: number[] = [];
    for (let i = 0; i < 3; i++) resumed.push((await b.trainStep()).total);
    assert.equal(resumed, rest, 'identical losses after resuming');
    assert.ok(rest.every(Number.isFinite));
    for (const tr of [a, b]) {
      tr.optimizer.dispose();
      tr.net.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
