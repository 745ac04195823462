/**
 * The layering rule of src/ (ARCHITECTURE.md): each folder is a layer with a rank, and a file may import only
 * files of its own layer or of lower ranks; no import loops between files; nothing in src/ imports from outside it.
 * `npx tsx scripts/check-layers.ts` prints every violation and exits 1 when there is one; the test suite runs it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';

/** Layers from the bottom up. Layers of one rank do not import each other. */
export const LAYERS: Record<string, number> = {
  util: 0,
  io: 1,
  runtime: 1,
  metrics: 2,
  tensor: 2,
  kernels: 3,
  autograd: 4,
  ops: 5,
  optim: 5,
  model: 6,
  train: 7,
  check: 7, // moefusion selftest: kernels and the network against float64 and PyTorch references
  bench: 8,
  cli: 9,
  '.': 10, // src/index.ts, the package's entry
};

/** The layer of a file relative to src/ ('.' for files directly in src/), or null outside src/. */
export function layerOf(file: string): string | null {
  if (file.startsWith('..')) return null;
  const parts = file.split('/');
  return parts.length === 1 ? '.' : parts[0];
}

/** Relative import specifiers of a TypeScript source (static, dynamic and type-only imports and re-exports). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bimport|\bexport)\s*(?:type\s+)?(?:[^'"`;]*?\bfrom\s*)?\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;
  for (let m; (m = re.exec(source)); ) out.push(m[1]);
  return out;
}

export interface Violation {
  file: string;
  message: string;
}

/** Checks files given as { path relative to src/: source }. */
export function checkLayers(files: Map<string, string>): Violation[] {
  const violations: Violation[] = [];
  const edges = new Map<string, string[]>();
  for (const [file, source] of files) {
    const from = layerOf(file);
    const targets: string[] = [];
    if (from === null || !(from in LAYERS)) {
      violations.push({ file, message: `is in no layer: add its folder to LAYERS in scripts/check-layers.ts` });
      continue;
    }
    for (const spec of importsOf(source)) {
      const target = normalize(join(dirname(file), spec));
      const to = layerOf(target);
      if (to === null) violations.push({ file, message: `imports ${spec}, outside src/` });
      else if (to !== from && !(to in LAYERS)) violations.push({ file, message: `imports ${spec}, in no layer` });
      else if (to !== from && LAYERS[to] >= LAYERS[from])
        violations.push({ file, message: `imports ${spec}: layer ${from} (rank ${LAYERS[from]}) may not import layer ${to} (rank ${LAYERS[to]})` });
      targets.push(target);
    }
    edges.set(file, targets);
  }
  for (const loop of importLoops(edges)) violations.push({ file: loop[0], message: `import loop: ${[...loop, loop[0]].join(' → ')}` });
  return violations;
}

/** Strongly connected components of more than one file (or a file importing itself), by Tarjan's algorithm. */
function importLoops(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) loops.push(scc.reverse());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return loops;
}

/** Every .ts file under dir, keyed by its path relative to dir. */
export function readSources(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) files.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const violations = checkLayers(readSources(resolve(import.meta.dirname, '../src')));
  for (const v of violations) console.error(`src/${v.file}: ${v.message}`);
  console.log(violations.length ? `${violations.length} layering violations` : 'layers: every import goes downwards, no loops');
  process.exit(violations.length ? 1 : 0);
}
