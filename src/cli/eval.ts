/**
 * `moefusion eval`: scores fused images against their infrared/visible sources under one metric protocol and
 * prints a table; optionally writes JSON, CSV and Markdown. Bad input fails with one error naming the file,
 * before any output file is written (or is skipped with --skip-bad).
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { evaluate, summaryToJson, type FusedFolder, type MethodSummary } from '../metrics/evaluate.ts';
import { getProtocol, METRIC_NAMES, PROTOCOL_NAMES } from '../metrics/protocols.ts';
import { atomicOutputs } from '../io/atomic.ts';
import { UserError } from './errors.ts';
import { checkOutputs } from './outputs.ts';

interface EvalOptions {
  ir: string;
  vi: string;
  fused: FusedFolder[];
  protocol: string;
  json?: string;
  csv?: string;
  markdown?: string;
  perImage?: boolean;
  skipBad?: boolean;
}

function parseFused(value: string, previous: FusedFolder[] = []): FusedFolder[] {
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError('expected NAME=DIR, e.g. ours=out/fused');
  return [...previous, { method: value.slice(0, at), dir: value.slice(at + 1) }];
}

const format = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : String(v));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function terminalReport(protocol: string, summaries: MethodSummary[], perImage: boolean): string {
  const header = ['method', ...METRIC_NAMES];
  const parts = [
    `protocol ${protocol}: mean over images`,
    table(header, summaries.map((s) => [`${s.method} (${s.count})`, ...METRIC_NAMES.map((m) => format(s.mean[m]))])),
    `\nstandard deviation over images`,
    table(header, summaries.map((s) => [s.method, ...METRIC_NAMES.map((m) => format(s.std[m]))])),
  ];
  if (perImage)
    for (const s of summaries)
      parts.push(`\n${s.method}, per image`, table(['image', ...METRIC_NAMES], s.perImage.map((p) => [p.image, ...METRIC_NAMES.map((m) => format(p.values[m]))])));
  return parts.join('\n');
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One row per method for the mean and one for the std; per-image rows first when asked. */
function csvReport(protocol: string, summaries: MethodSummary[], perImage: boolean): string {
  const rows = [['protocol', 'method', 'image', ...METRIC_NAMES]];
  for (const s of summaries) {
    if (perImage) for (const p of s.perImage) rows.push([protocol, s.method, p.image, ...METRIC_NAMES.map((m) => String(p.values[m]))]);
    rows.push([protocol, s.method, 'mean', ...METRIC_NAMES.map((m) => String(s.mean[m]))]);
    rows.push([protocol, s.method, 'std', ...METRIC_NAMES.map((m) => String(s.std[m]))]);
  }
  return rows.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
}

function markdownReport(protocol: string, summaries: MethodSummary[]): string {
  const header = `| Method | Images | ${METRIC_NAMES.join(' | ')} |`;
  const rule = `|---|---:|${METRIC_NAMES.map(() => '---:').join('|')}|`;
  const rows = summaries.map(
    (s) => `| ${s.method} | ${s.count} | ${METRIC_NAMES.map((m) => `${format(s.mean[m])} ± ${format(s.std[m])}`).join(' | ')} |`,
  );
  return [`Metrics under the \`${protocol}\` protocol (mean ± population std over images).`, '', header, rule, ...rows, ''].join('\n');
}

/** Writes every output to a temporary file first, then renames them all: no partial output on failure. */
async function writeOutputs(outputs: Array<[string, string]>): Promise<void> {
  const staged = atomicOutputs();
  try {
    for (const [path, text] of outputs) await staged.write(path, text);
    await staged.commit();
  } catch (e) {
    await staged.abort();
    throw e;
  }
}

async function runWithOptions(options: EvalOptions): Promise<void> {
  const protocol = getProtocol(options.protocol);
  // Outputs are checked before the (long) scoring: their folders must exist and be writable, and none may be an
  // input (a source or fused image) or another output.
  const files = [['--json', options.json], ['--csv', options.csv], ['--markdown', options.markdown]] as const;
  for (const [flag, path] of files) if (path) checkOutputFile(flag, path);
  checkOutputs(
    files.map(([flag, path]) => !!path && { flag, path, kind: 'file' as const }),
    [{ flag: '--ir', path: options.ir }, { flag: '--vi', path: options.vi }, ...options.fused.map((f) => ({ flag: '--fused', path: f.dir }))],
  );
  const started = Date.now();
  const summaries = await evaluate({
    irDir: options.ir,
    viDir: options.vi,
    fused: options.fused,
    protocol,
    skipBad: options.skipBad,
    onSkip: (reason) => console.error(`skipped: ${reason}`),
  });
  const perImage = Boolean(options.perImage);
  console.log(terminalReport(protocol.name, summaries, perImage));
  console.log(`\n${((Date.now() - started) / 1000).toFixed(1)} s`);
  const outputs: Array<[string, string]> = [];
  if (options.json) outputs.push([options.json, JSON.stringify(summaryToJson(summaries, perImage), null, 2) + '\n']);
  if (options.csv) outputs.push([options.csv, csvReport(protocol.name, summaries, perImage)]);
  if (options.markdown) outputs.push([options.markdown, markdownReport(protocol.name, summaries)]);
  await writeOutputs(outputs);
  for (const [path] of outputs) console.log(`wrote ${path}`);
}

/** The `eval` subcommand, ready to be mounted on the moefusion CLI. */
export function evalCommand(): Command {
  return new Command('eval')
    .description('score fused images against their infrared/visible sources (EN SD SF AG MI SCD CC VIF Qabf SSIM PSNR)')
    .requiredOption('--ir <dir>', 'infrared source images')
    .requiredOption('--vi <dir>', 'visible source images (paired with --ir by file name)')
    .requiredOption('--fused <name=dir>', 'a method name and its folder of fused images; repeat for more methods', parseFused)
    .addOption(new Option('--protocol <name>', 'which published implementation to reproduce').choices(PROTOCOL_NAMES).default('tang'))
    .option('--json <file>', 'write method → metric means (and std, image count) as JSON')
    .option('--csv <file>', 'write a CSV table')
    .option('--markdown <file>', 'write a Markdown table (mean ± std)')
    .option('--per-image', 'also report every image')
    .option('--skip-bad', 'skip bad or unpaired images (and say so) instead of failing')
    .action(async (options: EvalOptions) => runWithOptions(options));
}

/** An output file's folder must exist and be writable, and the path must not be a folder. */
function checkOutputFile(flag: string, path: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`${flag} ${path}: is a folder; expected a file name`);
  const dir = dirname(resolve(path));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`${flag} ${path}: the folder ${dir} does not exist`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UserError(`${flag} ${path}: the folder ${dir} is not writable`);
  }
}
