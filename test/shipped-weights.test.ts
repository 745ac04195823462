/**
 * The shipped weights (weights/moefusion.safetensors) on the engine against the PyTorch reference: the fixture
 * fixtures/shipped-parity.safetensors, written by bench/reference/shipped_parity.py from that very file, holds two
 * 160×120 input pairs with attention maps and PyTorch's float64 inference: fused images and every gate's decisions.
 * A new weights file needs a new fixture: the first test says so.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { weightsFromFile } from '../src/model/weights.ts';
import { DEFAULT_WEIGHTS } from '../src/cli/defaults.ts';
import { inferenceParity, readParityFixture } from '../src/check/parity.ts';
import { describeComparison } from '../src/check/compare.ts';

const t = suite('shipped weights against PyTorch');
const fx = readParityFixture(resolve(import.meta.dirname, '../fixtures/shipped-parity.safetensors'));
const recorded = JSON.parse(fx.file.metadata['moefusion.fixture']) as { weights_sha256: string };

t('the fixture was computed from the shipped weights file', () => {
  const sha = createHash('sha256').update(readFileSync(DEFAULT_WEIGHTS)).digest('hex');
  assert.is(sha, recorded.weights_sha256, 'weights/moefusion.safetensors changed: run python bench/reference/shipped_parity.py');
});

t('fused images, gates and chosen experts of the shipped weights match PyTorch', async () => {
  await gpu();
  const net = weightsFromFile(readSafetensors(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS);
  try {
    const list = await inferenceParity(fx, net);
    assert.is(list.filter((c) => c.measure === 'mismatches').length, 3, 'the experts of three gates compared');
    assert.is(list.length, 10, 'the fused image and the gates, experts and importance of each gate compared');
    for (const c of list) assert.ok(c.pass, describeComparison(c));
  } finally {
    net.dispose();
  }
});

t.run();
