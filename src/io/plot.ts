/**
 * Small raster pictures without a plotting library: a loss-curve chart and side-by-side image strips, as RGB
 * buffers the image writer saves as PNG.
 */

export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array; // interleaved RGB
}

function canvas(width: number, height: number, gray = 255): Rgb {
  return { width, height, data: new Uint8Array(width * height * 3).fill(gray) };
}

function setPixel(img: Rgb, x: number, y: number, [r, g, b]: readonly number[]): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const p = 3 * (Math.round(y) * img.width + Math.round(x));
  img.data[p] = r;
  img.data[p + 1] = g;
  img.data[p + 2] = b;
}

function line(img: Rgb, x0: number, y0: number, x1: number, y1: number, color: readonly number[]): void {
  const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  for (let s = 0; s <= steps; s++) setPixel(img, x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps, color);
}

export const SERIES_COLORS = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
] as const;

/**
 * Line chart of one or more series against step, log-scaled y when all values are positive and span > 10×.
 * Gridlines mark powers of ten (log) or quarters (linear). No text: the legend order is SERIES_COLORS.
 */
export function lineChart(series: Array<Array<[number, number]>>, width = 800, height = 400): Rgb {
  const img = canvas(width, height);
  const pts = series.flat();
  if (!pts.length) return img;
  const margin = 20;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]).filter(Number.isFinite);
  const xmin = Math.min(...xs);
  const xmax = Math.max(...xs, xmin + 1);
  const positive = ys.every((v) => v > 0);
  const useLog = positive && Math.max(...ys) / Math.min(...ys) > 10;
  const f = (v: number) => (useLog ? Math.log10(v) : v);
  let ymin = Math.min(...ys.map(f));
  let ymax = Math.max(...ys.map(f));
  if (ymax - ymin < 1e-12) {
    ymin -= 0.5;
    ymax += 0.5;
  }
  const px = (x: number) => margin + ((x - xmin) / (xmax - xmin)) * (width - 2 * margin);
  const py = (y: number) => height - margin - ((f(y) - ymin) / (ymax - ymin)) * (height - 2 * margin);
  const grid = [225, 225, 225];
  if (useLog) for (let e = Math.ceil(ymin); e <= Math.floor(ymax); e++) line(img, margin, py(10 ** e), width - margin, py(10 ** e), grid);
  else for (let q = 0; q <= 4; q++) {
    const y = height - margin - (q / 4) * (height - 2 * margin);
    line(img, margin, y, width - margin, y, grid);
  }
  line(img, margin, height - margin, width - margin, height - margin, [0, 0, 0]);
  line(img, margin, margin, margin, height - margin, [0, 0, 0]);
  series.forEach((s, k) => {
    const color = SERIES_COLORS[k % SERIES_COLORS.length];
    for (let i = 1; i < s.length; i++) line(img, px(s[i - 1][0]), py(s[i - 1][1]), px(s[i][0]), py(s[i][1]), color);
  });
  return img;
}

/** Places gray or RGB images of equal height side by side with a white gap. */
export function sideBySide(images: Array<{ width: number; height: number; channels: 1 | 3; data: Uint8Array }>, gap = 8): Rgb {
  const height = Math.max(...images.map((i) => i.height));
  const width = images.reduce((w, i) => w + i.width, 0) + gap * (images.length - 1);
  const out = canvas(width, height);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < im.height; y++)
      for (let x = 0; x < im.width; x++) {
        const s = (y * im.width + x) * im.channels;
        const d = 3 * (y * width + x0 + x);
        out.data[d] = im.data[s];
        out.data[d + 1] = im.data[s + (im.channels === 3 ? 1 : 0)];
        out.data[d + 2] = im.data[s + (im.channels === 3 ? 2 : 0)];
      }
    x0 += im.width + gap;
  }
  return out;
}

/**
 * Grouped bar chart: one group per entry, one bar per value (colours in SERIES_COLORS order), bars scaled to the
 * largest value. No text: callers print the numbers beside the picture.
 */
export function barChart(groups: Array<{ label: string; values: number[] }>, width = 800, height = 400): Rgb {
  const img = canvas(width, height);
  const margin = 20;
  const max = Math.max(1e-12, ...groups.flatMap((g) => g.values));
  const groupWidth = (width - 2 * margin) / Math.max(1, groups.length);
  const bars = Math.max(1, ...groups.map((g) => g.values.length));
  const barWidth = (groupWidth * 0.8) / bars;
  groups.forEach((g, gi) => {
    g.values.forEach((v, bi) => {
      const x0 = margin + gi * groupWidth + groupWidth * 0.1 + bi * barWidth;
      const h = (v / max) * (height - 2 * margin);
      const color = SERIES_COLORS[bi % SERIES_COLORS.length];
      for (let x = Math.round(x0); x < Math.round(x0 + barWidth - 2); x++) line(img, x, height - margin, x, height - margin - h, color);
    });
  });
  line(img, margin, height - margin, width - margin, height - margin, [0, 0, 0]);
  return img;
}
