/**
 * `moefusion export --onnx`: the model written atomically (into a folder it creates), what it says, and every bad
 * input refused with its exit code and one `moefusion:` line naming it, nothing written and nothing a user had lost.
 * Runs in this process through main(); needs no GPU.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { runInProcess as run } from './helpers/cli.ts';
import { writeFixtureWeights } from './helpers/weights.ts';
import { EXIT_USAGE, EXIT_USER } from '../src/cli/errors.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors-file.ts';

const t = suite('export cli');
const dir = mkdtempSync(join(tmpdir(), 'moefusion-export-'));
const weights = join(dir, 'w.safetensors');

/** Every file under dir, recursively (relative paths). */
function files(): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

t.before(() => writeFixtureWeights(weights));
t.after(() => rmSync(dir, { recursive: true, force: true }));

t('writes the model into a new folder, atomically, and says what it holds', async () => {
  const out = join(dir, 'models/small.onnx');
  const r = await run('export', '--onnx', out, '--weights', weights, '--opset', '13');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /wrote .*small\.onnx \(\d+\.\d MiB, ONNX opset 13\)/);
  assert.match(r.out, /inputs ir, vis, attention: float32 \[1, 1, H, W\]/);
  const model = onnxProto.onnx.ModelProto.decode(readFileSync(out));
  assert.equal(model.opsetImport.map((o) => Number(o.version)), [13]);
  assert.equal(readdirSync(join(dir, 'models')), ['small.onnx'], 'no temporary file left');
  rmSync(join(dir, 'models'), { recursive: true });
});

t('bad input: each refused with its exit code and a line naming it; nothing written, the existing file kept', async () => {
  const kept = join(dir, 'kept.onnx');
  writeFileSync(kept, 'a model the user had');
  const notWeights = join(dir, 'notes.txt');
  writeFileSync(notWeights, 'not a safetensors file');
  const partial = join(dir, 'partial.safetensors');
  const file = readSafetensors(weights);
  writeSafetensors(partial, Object.fromEntries([...file.tensors].filter(([n]) => !n.startsWith('DecoderMoE.experts.3')).map(([n, v]) => [n, v])), { metadata: file.metadata });
  const sameAsWeights = join(dir, 'w.onnx');
  copyFileSync(weights, sameAsWeights);
  mkdirSync(join(dir, 'folder.onnx'));
  const before = files();
  const cases: Array<[string, string[], number, RegExp]> = [
    ['no --onnx', ['--weights', weights], EXIT_USAGE, /--onnx/],
    ['opset too old', ['--onnx', kept, '--weights', weights, '--opset', '12'], EXIT_USAGE, /--opset 12: expected an integer from 13 to 22/],
    ['opset not a number', ['--onnx', kept, '--weights', weights, '--opset', 'new'], EXIT_USAGE, /--opset new/],
    ['weights missing', ['--onnx', kept, '--weights', join(dir, 'nope.safetensors')], EXIT_USER, /--weights .*nope\.safetensors: no such file/],
    ['weights a folder', ['--onnx', kept, '--weights', dir], EXIT_USER, /--weights .*: is a folder/],
    ['weights not safetensors', ['--onnx', kept, '--weights', notWeights], EXIT_USER, /notes\.txt: /],
    ['weights missing tensors', ['--onnx', kept, '--weights', partial], EXIT_USER, /partial\.safetensors: missing 8 tensor\(s\): DecoderMoE\.experts\.3/],
    ['output not .onnx', ['--onnx', join(dir, 'model.bin'), '--weights', weights], EXIT_USER, /--onnx .*model\.bin: expected a file name ending in \.onnx/],
    ['output a folder', ['--onnx', join(dir, 'folder.onnx'), '--weights', weights], EXIT_USER, /--onnx .*folder\.onnx: is a folder/],
    ['output is the weights', ['--onnx', sameAsWeights, '--weights', sameAsWeights], EXIT_USER, /w\.onnx is an input \(--weights\): it would be overwritten/],
    ['output under a file', ['--onnx', join(notWeights, 'm.onnx'), '--weights', weights], EXIT_USER, /--onnx .*notes\.txt: exists and is not a folder/],
  ];
  for (const [what, args, code, message] of cases) {
    const r = await run('export', ...args);
    assert.is(r.code, code, `${what}: exit code (${r.err.trim()})`);
    const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('(add --help'));
    assert.is(lines.length, 1, `${what}: one line, got ${r.err}`);
    assert.match(lines[0], /^moefusion: /, what);
    assert.match(lines[0], message, what);
  }
  assert.equal(files(), before, 'nothing written or removed');
  assert.is(readFileSync(kept, 'utf8'), 'a model the user had');
  assert.ok(existsSync(sameAsWeights) && readFileSync(sameAsWeights).equals(readFileSync(weights)), 'the weights untouched');
});

t.run();
