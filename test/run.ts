/**
 * Test runner: loads every test/**\/*.test.ts (or the files given as arguments) as uvu suites, runs them,
 * and prints `N passed, M failed` as its last line. Exit code 1 on any failure.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { shutdownEngine } from '../src/tensor/engine.ts';

type Runner = () => Promise<[string | true, number, number, number]>;
const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: Array<Array<string | Runner | null>>; UVU_INDEX: number };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const root = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const files = args.length ? args.map((a) => resolve(a)) : findTests(resolve(root, 'test'));
const filter = process.env.TEST_FILTER;

let passed = 0;
let failed = 0;
let loadErrors = 0;
const started = Date.now();
for (const [i, file] of files.entries()) {
  const name = relative(root, file);
  if (filter && !name.includes(filter)) continue;
  g.UVU_INDEX = g.UVU_QUEUE.length;
  g.UVU_QUEUE.push([name]);
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    console.error(`\n✘ could not load ${name}: ${(e as Error).stack ?? e}`);
    loadErrors++;
  }
  void i;
}

for (const group of g.UVU_QUEUE) {
  const name = group.shift();
  process.stdout.write(`\n${name}\n`);
  for (const run of group as Runner[]) {
    const [errs, ran, , total] = await run();
    passed += ran;
    failed += total - ran;
    if (errs !== true) process.stdout.write('\n' + errs + '\n');
  }
}
shutdownEngine();
failed += loadErrors;
console.log(`\nduration: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
