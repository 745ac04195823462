/** The layering rule of ARCHITECTURE.md, checked on src/ (and the checker checked on made-up files). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resolve } from 'node:path';
import { checkLayers, importsOf, readSources } from '../scripts/check-layers.ts';

const t = suite('layers');

t('src/: every import goes to the same or a lower layer, and no file imports itself back', () => {
  const violations = checkLayers(readSources(resolve(import.meta.dirname, '../src')));
  assert.equal(violations.map((v) => `${v.file}: ${v.message}`), []);
});

t('the checker finds an upward import, a loop, an import from outside src/ and a folder in no layer', () => {
  const files = new Map([
    ['kernels/a.ts', "import { x } from '../ops/b.ts';\nimport type { Y } from './c.ts';"],
    ['ops/b.ts', "export const x = 1;"],
    ['kernels/c.ts', "export { z } from './a.ts';"],
    ['cli/d.ts', "import { run } from '../../bench/run.ts';"],
    ['extra/e.ts', 'export {};'],
  ]);
  const messages = checkLayers(files).map((v) => `${v.file}: ${v.message}`);
  assert.ok(messages.some((m) => m.startsWith('kernels/a.ts: imports ../ops/b.ts: layer kernels')), messages.join('\n'));
  assert.ok(messages.some((m) => m.includes('import loop: kernels/a.ts → kernels/c.ts → kernels/a.ts')), messages.join('\n'));
  assert.ok(messages.some((m) => m === 'cli/d.ts: imports ../../bench/run.ts, outside src/'), messages.join('\n'));
  assert.ok(messages.some((m) => m.startsWith('extra/e.ts: is in no layer')), messages.join('\n'));
});

t('imports of every form are seen: static, type-only, re-exports, side effects, dynamic', () => {
  const src = `import a from './a.ts';
import type { B } from './b.ts';
export * from './c.ts';
export { d } from "./d.ts";
import './e.ts';
const f = await import('./f.ts');
import { g,
  h } from '../g.ts';`;
  assert.equal(importsOf(src), ['./a.ts', './b.ts', './c.ts', './d.ts', './e.ts', './f.ts', '../g.ts']);
});

t.run();
