/**
 * Progress for long loops: a redrawn bar with ETA and custom fields (loss, lr, …) on a terminal, whose clock
 * moves every second even while no step ends (one large image); elsewhere (logs, CI, pipes) a plain line at most
 * every `intervalMs` and one at the end. Writes to stderr so that stdout stays clean for results.
 */

export type ProgressFields = Record<string, number | string>;

export interface Progress {
  /** Advances by `step` (default 1) and updates the fields shown after the bar. */
  tick(fields?: ProgressFields, step?: number): void;
  /** Sets the absolute position. */
  update(value: number, fields?: ProgressFields): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Plain mode: the shortest time between two lines (default 10 s). */
  intervalMs?: number;
  /** Print nothing at all. */
  quiet?: boolean;
  /** Clock in ms (tests). */
  now?: () => number;
  /** The position the loop starts at (a resumed run's step); the ETA counts the pace from there. Default 0. */
  start?: number;
  /** Calls fn every `ms` until the returned function is called: the terminal bar's clock (tests pass a fake timer). */
  every?: (ms: number, fn: () => void) => () => void;
}

/** setInterval that does not keep the process alive. */
function every(ms: number, fn: () => void): () => void {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
}

const BAR_WIDTH = 30;

/**
 * Seconds left, from the pace since the position the loop started at: a loop resumed at step 300 of 2500 has done
 * only the steps since then in the time elapsed.
 */
function etaClock(now: () => number, start: number) {
  const origin = { value: start, time: now() };
  return (value: number, total: number): number => {
    if (value >= total) return 0;
    const done = value - origin.value;
    return done > 0 ? ((now() - origin.time) / 1000 / done) * (total - value) : NaN;
  };
}

/** 0.0123 → "0.0123", 12345.6 → "1.235e+4": four significant digits. */
function formatField(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toPrecision(4);
}

export function formatFields(fields: ProgressFields): string {
  return Object.entries(fields).map(([k, v]) => `${k} ${formatField(v)}`).join('  ');
}

/** Seconds → "42s", "3m05s", "2h07m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createProgress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { tick() {}, update() {}, stop() {} };
  const now = opts.now ?? Date.now;
  const start = opts.start ?? 0;
  return stream.isTTY ? barProgress(total, label, start, stream as TerminalStream, now, opts.every ?? every) : plainProgress(total, label, start, stream, opts.intervalMs ?? 10_000, now);
}

type TerminalStream = NodeJS.WritableStream & { columns?: number };

/** The bar, redrawn in place on each step and each second; a line of its own once stopped. */
function barProgress(total: number, label: string, startValue: number, stream: TerminalStream, now: () => number, timer: NonNullable<ProgressOptions['every']>): Progress {
  const start = now();
  let value = startValue;
  let fields = '';
  let drawn = '';
  let stopped = false;
  const eta = etaClock(now, startValue);
  const draw = () => {
    const elapsed = (now() - start) / 1000;
    const left = eta(value, total);
    const filled = total > 0 ? Math.round((BAR_WIDTH * Math.min(value, total)) / total) : BAR_WIDTH;
    const line = `${label} [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${value}/${total} | ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(left)}${fields}`;
    if (line === drawn) return;
    drawn = line;
    // Back to the line's start, the line (cut to the terminal's width: a wrapped line cannot be redrawn), clear the rest.
    stream.write(`\r${stream.columns ? line.slice(0, stream.columns - 1) : line}\x1b[K`);
  };
  const set = (v: number, f: ProgressFields | undefined) => {
    value = v;
    if (f) fields = ` | ${formatFields(f)}`;
    if (!stopped) draw();
  };
  draw();
  const stopClock = timer(1000, draw);
  return {
    tick: (f, step = 1) => set(value + step, f),
    update: (v, f) => set(v, f),
    stop() {
      if (stopped) return;
      stopped = true;
      stopClock();
      draw();
      stream.write('\n');
    },
  };
}

function plainProgress(total: number, label: string, startValue: number, stream: NodeJS.WritableStream, intervalMs: number, now: () => number): Progress {
  const start = now();
  let last = start;
  let value = startValue;
  let fields: ProgressFields = {};
  let stopped = false;
  const eta = etaClock(now, startValue);
  const line = () => {
    const elapsed = (now() - start) / 1000;
    const left = eta(value, total);
    const pct = total > 0 ? Math.floor((100 * value) / total) : 100;
    const extra = formatFields(fields);
    stream.write(`${label}: ${value}/${total} (${pct}%) ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(left)}${extra ? `  ${extra}` : ''}\n`);
    last = now();
  };
  const maybeLine = () => {
    if (now() - last >= intervalMs) line();
  };
  return {
    tick(f, step = 1) {
      value += step;
      if (f) fields = f;
      maybeLine();
    },
    update(v, f) {
      value = v;
      if (f) fields = f;
      maybeLine();
    },
    stop() {
      if (!stopped) line();
      stopped = true;
    },
  };
}
