/**
 * The validation scores of a training run (its log.jsonl) as a markdown table: every validated step in both output
 * ranges, the training-free baselines logged at the start, and how many of the 8 metrics each step beats the
 * multi-scale fusion on. The last line names the step to ship: the most wins over both ranges; between tied steps, the
 * one ahead on more of the 16 scores head to head, the earlier one if that ties too, so that a later step replaces
 * shipped weights only when it is better (the training sets' validation pairs only; the test sets choose nothing).
 *
 *   npx tsx scripts/validation-table.ts /root/runs/long/log.jsonl
 */
import { readFileSync } from 'node:fs';

const METRICS = ['EN', 'SD', 'SF', 'AG', 'MI', 'SCD', 'VIF', 'Qabf'] as const;
type Scores = Record<(typeof METRICS)[number], number>;
const RANGES = ['clamp', 'stretch'] as const;

const file = process.argv[2];
if (!file) {
  console.error('usage: npx tsx scripts/validation-table.ts RUN/log.jsonl');
  process.exit(2);
}
const records = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const baselines = records.find((r) => r.baselines)?.baselines as Record<string, Record<(typeof RANGES)[number], Scores>> | undefined;
if (!baselines?.multiscale) {
  console.error(`${file}: no baselines record (runs before 2026-12-07 did not log them)`);
  process.exit(1);
}
// A resumed run logs a step's validation again if it was lost with the log's tail: the last one counts.
const byStep = new Map<number, { clamp: Scores; stretch: Scores }>();
for (const r of records) if (r.validation) byStep.set(r.step, { clamp: r.validation, stretch: r.validation.stretch });

const wins = (s: Scores, range: (typeof RANGES)[number]) => METRICS.filter((m) => s[m] > baselines.multiscale[range][m]).length;
const row = (name: string, s: Scores, extra: string) => `| ${name} | ${METRICS.map((m) => s[m].toFixed(m === 'VIF' || m === 'Qabf' ? 3 : 2)).join(' | ')} | ${extra} |`;

for (const range of RANGES) {
  console.log(`\n${range}:\n\n| step | ${METRICS.join(' | ')} | beats multi-scale on |`);
  console.log(`|---|${METRICS.map(() => '---:').join('|')}|---:|`);
  for (const [method, b] of Object.entries(baselines)) console.log(row(method, b[range], ''));
  for (const [step, v] of [...byStep].sort((a, b) => a[0] - b[0])) console.log(row(String(step), v[range], `${wins(v[range], range)}/8`));
}
type Validation = { clamp: Scores; stretch: Scores };
/** Of the 16 scores (8 metrics, both ranges), how many a is ahead of b on. */
const ahead = (a: Validation, b: Validation) => RANGES.reduce((n, r) => n + METRICS.filter((m) => a[r][m] > b[r][m]).length, 0);
let best: { step: number; wins: number; v: Validation } | null = null;
for (const [step, v] of [...byStep].sort((a, b) => a[0] - b[0])) {
  const w = wins(v.clamp, 'clamp') + wins(v.stretch, 'stretch');
  if (step > 0 && (!best || w > best.wins || (w === best.wins && ahead(v, best.v) > ahead(best.v, v)))) best = { step, wins: w, v };
}
if (best) console.log(`\nbest: step ${best.step} (${best.wins} of 16 wins over the multi-scale fusion, both ranges)`);
else console.log('\nno validated step after step 0 yet');
