/**
 * `moefusion selftest`: on the current adapter, the kernel checks (src/check/kernels.ts, against float64 references
 * computed at run time) and the whole network against the PyTorch fixture (src/check/parity.ts): inference, and a
 * training step with every parameter gradient. Each check reports its worst comparison and passes or fails.
 */
import { initEngine } from '../tensor/engine.ts';
import { subgroupSize } from '../kernels/variant.ts';
import { type Comparison, describeComparison, worstOf } from './compare.ts';
import { kernelChecks, type SelfCheck } from './kernels.ts';
import { inferenceParity, PARITY_FIXTURE, readParityFixture, trainingParity, type ParityFixture } from './parity.ts';

export interface CheckReport {
  name: string;
  pass: boolean;
  /** The worst comparison's error and tolerance (relative error, or a count of differing values); null when it threw. */
  error: number | null;
  tolerance: number | null;
  /** What the worst comparison compared. */
  worst: string | null;
  /** The failing comparisons, one line each (or the exception's message). */
  failures: string[];
  comparisons: Comparison[];
  seconds: number;
}

export interface SelftestReport {
  /** `subgroupLanes`: the subgroup size the kernels were built for (0: the portable kernels, without subgroups). */
  adapter: { name: string; backend: string; software: boolean; features: string[]; subgroupLanes: number };
  fixture: string | null;
  pass: boolean;
  passed: number;
  failed: number;
  checks: CheckReport[];
  seconds: number;
}

/** The two network checks, on one fixture read once. */
export function networkChecks(fixture: () => ParityFixture): SelfCheck[] {
  return [
    { name: 'network inference (PyTorch fixture)', run: () => inferenceParity(fixture()) },
    { name: 'network training step (PyTorch fixture)', run: async () => (await trainingParity(fixture())).comparisons },
  ];
}

export interface SelftestOptions {
  /** The parity fixture (default: fixtures/moe-fusion-small.safetensors of the package). */
  fixture?: string;
  /** Only the checks whose name contains one of these (case-insensitive). */
  only?: string[];
  /** Called after each check (progress). */
  onCheck?: (r: CheckReport) => void;
}

/** Every check's name, in order (for --only and --list). */
export function checkNames(): string[] {
  return [...kernelChecks(), ...networkChecks(() => undefined as never)].map((c) => c.name);
}

/** The checks `only` selects (all when absent). */
export function selectChecks(only?: string[]): string[] {
  const names = checkNames();
  if (!only?.length) return names;
  return names.filter((n) => only.some((o) => n.toLowerCase().includes(o.toLowerCase())));
}

export async function runSelftest(opts: SelftestOptions = {}): Promise<SelftestReport> {
  const started = performance.now();
  const { rt } = await initEngine();
  const selected = new Set(selectChecks(opts.only));
  const path = opts.fixture ?? PARITY_FIXTURE;
  let fx: ParityFixture | null = null;
  const checks = [...kernelChecks(), ...networkChecks(() => (fx ??= readParityFixture(path)))].filter((c) => selected.has(c.name));
  const reports: CheckReport[] = [];
  for (const check of checks) {
    const t0 = performance.now();
    let report: CheckReport;
    try {
      const comparisons = await check.run();
      await rt.sync();
      const worst = worstOf(comparisons);
      const failing = comparisons.filter((c) => !c.pass);
      report = {
        name: check.name,
        pass: comparisons.length > 0 && failing.length === 0,
        error: worst?.error ?? null,
        tolerance: worst?.tolerance ?? null,
        worst: worst?.what ?? null,
        failures: comparisons.length ? failing.map(describeComparison) : ['nothing was compared'],
        comparisons,
        seconds: (performance.now() - t0) / 1000,
      };
    } catch (e) {
      report = { name: check.name, pass: false, error: null, tolerance: null, worst: null, failures: [(e as Error).message ?? String(e)], comparisons: [], seconds: (performance.now() - t0) / 1000 };
    }
    reports.push(report);
    opts.onCheck?.(report);
  }
  const s = rt.handle.summary;
  const failed = reports.filter((r) => !r.pass).length;
  return {
    adapter: { name: `${s.vendor} ${s.device || s.description || s.architecture}`.trim(), backend: s.backend, software: s.isSoftware, features: [...rt.handle.features].sort(), subgroupLanes: subgroupSize() },
    fixture: fx ? path : null,
    pass: reports.length > 0 && failed === 0,
    passed: reports.length - failed,
    failed,
    checks: reports,
    seconds: (performance.now() - started) / 1000,
  };
}

/** One line per check: verdict, name, worst error against its tolerance, time; failing comparisons below it. */
export function formatCheck(r: CheckReport, width = 42): string {
  const verdict = r.pass ? 'pass' : 'FAIL';
  let err: string;
  if (r.error === null) err = 'error';
  else if (r.tolerance === 0) err = `${r.error} differing`.padEnd(20);
  else err = `max error ${r.error.toExponential(1)} ${r.error <= (r.tolerance ?? 0) ? '≤' : '>'} ${(r.tolerance ?? 0).toExponential(0)}`;
  const lines = [`${verdict}  ${r.name.padEnd(width)} ${err.padEnd(28)} ${r.seconds.toFixed(1).padStart(5)} s${r.worst && r.pass ? `  (worst: ${r.worst})` : ''}`];
  const shown = r.failures.slice(0, 5);
  for (const f of shown) lines.push(`        ${f}`);
  if (r.failures.length > shown.length) lines.push(`        … and ${r.failures.length - shown.length} more`);
  return lines.join('\n');
}
