/**
 * Converts a training run's weights into the shipped form: float16 storage, without the gates' training-noise
 * matrices (inference does not use them), with a note in the metadata. Checks that fusing the sample pair with the
 * converted file gives the same 8-bit image (within one grey level) as with the original.
 * Usage: tsx scripts/export-weights.ts IN.safetensors OUT.safetensors [KEY=VALUE ...metadata]
 */
import { resolve } from 'node:path';
import { initEngine, shutdownEngine } from '../src/tensor/engine.ts';
import { loadWeightsWithConfig, saveWeights } from '../src/model/weights-file.ts';
import { Fuser } from '../src/model/fuser.ts';
import { readImage } from '../src/io/image.ts';
import { to8bit } from '../src/io/color.ts';
import { readSafetensors } from '../src/io/safetensors-file.ts';
import { ATTENTION_METADATA_KEY } from '../src/model/attention.ts';

const [input, output, ...meta] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: tsx scripts/export-weights.ts IN.safetensors OUT.safetensors [KEY=VALUE ...]');
await initEngine();
const net = loadWeightsWithConfig(input);
// The run's own notes (its steps and the attention mode it trained with) go along, then the ones given here.
const { steps, [ATTENTION_METADATA_KEY]: attention } = readSafetensors(input).metadata;
const carried = Object.fromEntries(Object.entries({ steps, [ATTENTION_METADATA_KEY]: attention }).filter(([, v]) => v !== undefined));
const metadata = { ...carried, ...Object.fromEntries(meta.map((kv) => kv.split(/=(.*)/s).slice(0, 2))) };
await saveWeights(output, net, { dtype: 'F16', inferenceOnly: true, metadata });
net.dispose();

const root = resolve(import.meta.dirname, '..');
const ir = await readImage(resolve(root, 'samples/ir/00537D.png'));
const vi = await readImage(resolve(root, 'samples/vi/00537D.png'));
const fuseWith = async (file: string) => {
  const f = await Fuser.create({ weights: file });
  const out = await f.fuse(ir, vi);
  f.dispose();
  return to8bit(out.data);
};
const a = await fuseWith(input);
const b = await fuseWith(output);
let worst = 0;
for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
console.log(`wrote ${output}; largest difference of the fused sample (8-bit): ${worst}`);
shutdownEngine();
if (worst > 1) process.exit(1);
