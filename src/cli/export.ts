/**
 * `moefusion export --onnx FILE [--weights W] [--opset N]`: the fusion network of a weights file as an ONNX model
 * (src/model/onnx-export.ts), for onnxruntime and other ONNX runtimes. Needs no GPU. Everything is checked before the
 * file is written, atomically; the weights file is never touched.
 */
import { dirname, extname, resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, onnxFromWeightsFile } from '../model/onnx-export.ts';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.ts';
import { checkOutputs } from './outputs.ts';
import { checkWeightsFile } from './inputs.ts';
import { readSafetensors } from '../io/safetensors-file.ts';
import { ATTENTION_METADATA_KEY } from '../model/attention.ts';
import { DETECTOR_METADATA_KEY } from '../model/detector/config.ts';
import { UsageError, UserError } from './errors.ts';
import { DEFAULT_WEIGHTS } from './defaults.ts';

interface ExportArgs {
  onnx: string;
  weights: string;
  opset: string;
}

function parseOpset(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < MIN_OPSET || n > MAX_OPSET) throw new UsageError(`--opset ${v}: expected an integer from ${MIN_OPSET} to ${MAX_OPSET}`);
  return n;
}

/** Every check that needs no work: the opset, the weights' path, the output's name and folder. */
function check(a: ExportArgs): number {
  const opset = parseOpset(a.opset);
  checkWeightsFile(a.weights);
  if (extname(a.onnx).toLowerCase() !== '.onnx') throw new UserError(`--onnx ${a.onnx}: expected a file name ending in .onnx`);
  checkOutputs([{ flag: '--onnx', path: a.onnx, kind: 'file' }], [{ flag: '--weights', path: a.weights }]);
  return opset;
}

export async function runExport(a: ExportArgs): Promise<void> {
  const opset = check(a);
  const file = readSafetensors(a.weights);
  const bytes = onnxFromWeightsFile(file, a.weights, { opset });
  ensureWritableDir(dirname(resolve(a.onnx)), '--onnx');
  await writeFileAtomic(a.onnx, bytes);
  const attention = file.metadata[ATTENTION_METADATA_KEY];
  const lines = [
    `wrote ${a.onnx} (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ONNX opset ${opset}) from ${a.weights}:`,
    '  inputs ir, vis, attention: float32 [1, 1, H, W] in [0, 1], any H and W; output fused: [1, 1, H, W], unclamped',
    attention === 'saliency'
      ? '  attention: these weights were trained with the infrared saliency map (infraredSaliency(ir) in the library); 0.5 everywhere for none'
      : '  attention: the foreground weight Att per pixel; 0.5 everywhere for none',
  ];
  if (DETECTOR_METADATA_KEY in file.metadata) lines.push('  the detectors in the weights are not part of the model: pass their Att (Fuser.detect in the library), or 0.5');
  console.log(lines.join('\n'));
}

export function exportCommand(): Command {
  return new Command('export')
    .description('write the fusion network as an ONNX model (for onnxruntime in Node, browsers and elsewhere)')
    .requiredOption('--onnx <file>', 'the model file to write (.onnx)')
    .option('--weights <file>', 'weights (.safetensors)', DEFAULT_WEIGHTS)
    .option('--opset <n>', `ONNX opset, ${MIN_OPSET} to ${MAX_OPSET}`, String(DEFAULT_OPSET))
    .action(async (a: ExportArgs) => runExport(a));
}
