/**
 * Labelled charts (loss curves, benchmark bars) drawn as SVG and rasterised by sharp (librsvg), so that they carry
 * titles, axis ticks and legends. Text needs a system font (fontconfig); without one the shapes still render.
 */
import sharp from 'sharp';
import { writeImage } from './image.ts';
import { SERIES_COLORS } from './plot.ts';

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

export interface ChartText {
  title: string;
  xLabel?: string;
  yLabel?: string;
}

const WIDTH = 800;
const HEIGHT = 420;
const MARGIN = { left: 72, right: 20, top: 40, bottom: 64 };
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif"';

const color = (k: number) => `rgb(${SERIES_COLORS[k % SERIES_COLORS.length].join(',')})`;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A number as a short tick label: 3 significant digits, exponent form outside [1e-3, 1e5). */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(3)));
}

/** About `count` round values (1, 2 or 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis spanning 10^lo..10^hi: powers of ten, and 2× and 5× them when fewer than 3 decades show. */
export function logTicks(lo: number, hi: number): number[] {
  const decades = Array.from({ length: Math.max(0, Math.floor(hi) - Math.ceil(lo) + 1) }, (_, i) => 10 ** (Math.ceil(lo) + i));
  if (decades.length >= 3) return decades;
  const ticks: number[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(6));
      if (Math.log10(v) >= lo - 1e-9 && Math.log10(v) <= hi + 1e-9) ticks.push(v);
    }
  return ticks;
}

/** legend: [name, colour index] per entry. */
function frame(text: ChartText, body: string, legend: Array<[string, number]>): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  // Legend entries one after another, each as wide as its name (about 7.5 px per character at 13 px).
  let x = MARGIN.left + 10;
  const items = legend
    .map(([name, k]) => {
      const item = `<rect x="${x}" y="${HEIGHT - 22}" width="14" height="14" fill="${color(k)}"/>` +
        `<text x="${x + 20}" y="${HEIGHT - 10}" font-size="13" ${FONT}>${escape(name)}</text>`;
      x += 44 + 7.5 * name.length;
      return item;
    })
    .join('');
  const yLabel = text.yLabel
    ? `<text transform="translate(16 ${MARGIN.top + (HEIGHT - MARGIN.top - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="13" ${FONT}>${escape(text.yLabel)}</text>`
    : '';
  const xLabel = text.xLabel
    ? `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 30}" text-anchor="middle" font-size="13" ${FONT}>${escape(text.xLabel)}</text>`
    : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">
<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>
<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold" ${FONT}>${escape(text.title)}</text>
${body}${xLabel}${yLabel}${items}
</svg>`;
}

/**
 * Line chart of series against x (e.g. loss against step): log-scaled y when every value is positive and they span
 * more than 10×, gridlines at the y ticks, a legend with the series' names.
 */
export function lineChartSvg(series: Series[], text: ChartText): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  // Series without a point (e.g. no validation yet) stay out of the legend; colours keep the series' order.
  const legend = series.flatMap((s, k): Array<[string, number]> => (s.points.some(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) ? [[s.name, k]] : []));
  if (!pts.length) return frame(text, '', legend);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const useLog = ys.every((v) => v > 0) && Math.max(...ys) / Math.min(...ys) > 10;
  const f = (v: number) => (useLog ? Math.log10(v) : v);
  let [ymin, ymax] = [Math.min(...ys.map(f)), Math.max(...ys.map(f))];
  if (ymax - ymin < 1e-12) [ymin, ymax] = [ymin - 0.5, ymax + 0.5];
  const px = (x: number) => MARGIN.left + ((x - xmin) / (xmax - xmin)) * plotW;
  const py = (y: number) => MARGIN.top + plotH - ((f(y) - ymin) / (ymax - ymin)) * plotH;
  const yTicks = useLog ? logTicks(ymin, ymax) : niceTicks(ymin, ymax);
  const parts: string[] = [];
  for (const t of yTicks)
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="12" ${FONT}>${tickLabel(t)}</text>`);
  for (const t of niceTicks(xmin, xmax))
    parts.push(`<text x="${px(t)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="12" ${FONT}>${tickLabel(t)}</text>`);
  parts.push(`<polyline points="${MARGIN.left},${MARGIN.top} ${MARGIN.left},${MARGIN.top + plotH} ${MARGIN.left + plotW},${MARGIN.top + plotH}" fill="none" stroke="black"/>`);
  series.forEach((s, k) => {
    const line = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    if (line.length === 1) parts.push(`<circle cx="${line[0].split(',')[0]}" cy="${line[0].split(',')[1]}" r="3" fill="${color(k)}"/>`);
    else if (line.length) parts.push(`<polyline points="${line.join(' ')}" fill="none" stroke="${color(k)}" stroke-width="1.5"/>`);
  });
  return frame(text, parts.join('\n'), legend);
}

/** Grouped bar chart: one group per entry (labelled below), one bar per series (named in the legend), from zero. */
export function barChartSvg(groups: Array<{ label: string; values: number[] }>, seriesNames: string[], text: ChartText): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = Math.max(1e-12, ...groups.flatMap((g) => g.values.filter(Number.isFinite)));
  const ticks = niceTicks(0, max);
  if (ticks.length > 1 && ticks[ticks.length - 1] < max) ticks.push(2 * ticks[ticks.length - 1] - ticks[ticks.length - 2]);
  const top = Math.max(max, ticks[ticks.length - 1]);
  const py = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const groupW = plotW / Math.max(1, groups.length);
  const bars = Math.max(1, ...groups.map((g) => g.values.length));
  const barW = (groupW * 0.8) / bars;
  const parts: string[] = [];
  for (const t of ticks)
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="12" ${FONT}>${tickLabel(t)}</text>`);
  groups.forEach((g, gi) => {
    const x0 = MARGIN.left + gi * groupW + groupW * 0.1;
    g.values.forEach((v, bi) => {
      if (!Number.isFinite(v)) return;
      parts.push(`<rect x="${(x0 + bi * barW).toFixed(1)}" y="${py(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - py(v)).toFixed(1)}" fill="${color(bi)}"/>`);
    });
    parts.push(`<text x="${(x0 + groupW * 0.4).toFixed(1)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="12" ${FONT}>${escape(g.label)}</text>`);
  });
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="black"/>`);
  return frame(text, parts.join('\n'), seriesNames.map((name, k) => [name, k]));
}

/** Rasterises an SVG and writes it as an image (atomically, as every picture of the project). */
export async function writeSvgImage(path: string, svg: string): Promise<void> {
  const { data, info } = await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  await writeImage(path, new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, 3);
}
