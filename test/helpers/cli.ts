/** Runs the `moefusion` command line in a child process, as users do, and checks its one-line failures. */
import * as assert from 'uvu/assert';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { main } from '../../src/cli/main.ts';

const root = resolve(import.meta.dirname, '../..');
const MAIN = join(root, 'src/cli/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Exit code and output of `moefusion ARGS…` run in the repository root (Dawn's warnings removed from stderr). */
export function cli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.replace(/^Warning: .*\n/gm, '') };
}

/** cli() without blocking, so that several commands can run at once. */
export function cliAsync(...args: string[]): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: root });
    let [stdout, stderr] = ['', ''];
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr: stderr.replace(/^Warning: .*\n/gm, '') }));
  });
}

/** A failure as the CLI promises it: non-zero exit and exactly one `moefusion: …` line matching `pattern`. */
export function assertFails(r: CliResult, pattern: RegExp): void {
  assert.is.not(r.code, 0, 'non-zero exit');
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  assert.is(lines.length, 1, `one line of error, got: ${r.stderr}`);
  assert.match(lines[0], /^moefusion: /);
  assert.match(lines[0], pattern);
}

/** Runs `moefusion ARGS` in this process through main(): exit code and what it printed (console.log, stderr). */
export async function runInProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, write] = [console.log, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  const exitCode = process.exitCode;
  try {
    const code = await main(['node', 'moefusion', ...args]);
    return { code, out: out.join('\n'), err: err.join('') };
  } finally {
    [console.log, process.stderr.write] = [log, write];
    process.exitCode = exitCode;
  }
}

/** Exit code and output of a command run in the repository root (npx, or the built `bin/moefusion.mjs`), whatever the code. */
export async function sh(cmd: string, args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, args, { cwd: root, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const r = e as CliResult;
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }
}

/** The lines of stderr that come from moefusion (npm and Dawn add warnings of their own). */
export const ours = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('moefusion:'));
