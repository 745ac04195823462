/**
 * The end-to-end benchmark's peers at a tiny size (the timings themselves are the benchmark's business): PyTorch
 * (when python3 has torch) and onnxruntime's CPU provider fuse the engine's own pair, their outputs are checked
 * against the engine's before timing, and the results carry their times and ratios.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/gpu.ts';
import { CHECK_TOLERANCE, runBenchmark, type CaseResult } from '../src/bench/e2e.ts';
import { parseProviders } from '../src/bench/onnxruntime-peer.ts';

const t = suite('bench e2e peers');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-bench-e2e-'));
const hasTorch = spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

t.after(() => rmSync(dir, { recursive: true, force: true }));

t('every peer fuses the same pair, is checked against the engine, then timed in turns', async () => {
  await gpu();
  const lines: string[] = [];
  const file = await runBenchmark({ sizes: '40x30', train: '', runs: 1, warmup: 0, torch: hasTorch, ort: ['cpu'], out: dir }, (l) => lines.push(l));
  const [r] = (JSON.parse(readFileSync(file, 'utf8')) as { results: CaseResult[] }).results;
  assert.is(r.name, 'inference 1×40×30');
  const diff = r.check?.['onnxruntime-cpu'];
  assert.ok(typeof diff === 'number' && diff <= CHECK_TOLERANCE, `onnxruntime-cpu checked: ${diff}`);
  const ort = r.onnxruntime?.['onnxruntime-cpu'];
  assert.ok(ort && 'median' in ort && ort.median > 0 && ort.ratio > 0, JSON.stringify(ort));
  if (hasTorch) {
    assert.ok(typeof r.check?.torch === 'number' && r.check.torch <= CHECK_TOLERANCE, `PyTorch checked on the same pair: ${r.check?.torch}`);
    assert.ok(r.torch && 'median' in r.torch, JSON.stringify(r.torch));
  } else console.log('  (python3 has no torch: the PyTorch peer is not checked here)');
  assert.ok(lines.some((l) => /\| inference 1×40×30 \| onnxruntime-cpu \| \d+ \|/.test(l)), 'the onnxruntime table');
  const second = await runBenchmark({ sizes: '40x30', train: '', runs: 1, warmup: 0, torch: false, ort: [], out: dir }, () => {});
  assert.is(second, file.replace(/\.json$/, '-2.json'), 'a second run of the day keeps the first one\'s results');
  assert.ok(existsSync(file) && existsSync(second.replace(/\.json$/, '.png')));
});

t('providers: parsed with the option named on a bad one', () => {
  assert.equal(parseProviders('cpu,webgpu'), ['cpu', 'webgpu']);
  assert.equal(parseProviders('none'), []);
  assert.throws(() => parseProviders('cuda'), /--ort cuda: expected providers from cpu, webgpu/);
});

t.run();
