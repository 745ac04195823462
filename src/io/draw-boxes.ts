/**
 * Pictures of detections: boxes drawn as class-coloured outlines onto an RGB picture, and an attention map shown as
 * a red tint over a gray image.
 */
import type { Box } from './boxes.ts';
import { SERIES_COLORS, type Rgb } from './plot.ts';

/** A gray image (8-bit) as RGB. */
export function grayToRgb(gray: Uint8Array, width: number, height: number): Rgb {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = gray[i];
  return { width, height, data };
}

/** Gray image with attention a ∈ [0,1] as a red tint: red = max(gray, 255·a), the others dimmed by (1 − a/2). */
export function attentionOverlay(gray: Uint8Array, attention: Float32Array, width: number, height: number): Rgb {
  const img = grayToRgb(gray, width, height);
  for (let i = 0; i < width * height; i++) {
    const a = Math.min(1, Math.max(0, attention[i]));
    img.data[3 * i] = Math.max(gray[i], Math.round(255 * a));
    img.data[3 * i + 1] = img.data[3 * i + 2] = Math.round(gray[i] * (1 - a / 2));
  }
  return img;
}

/** Draws each box's outline (2 px, inside the box) in its class's colour; classIndex picks the colour. */
export function drawBoxes(img: Rgb, boxes: Array<Box & { classIndex?: number }>, classes: string[]): Rgb {
  for (const b of boxes) {
    const c = SERIES_COLORS[Math.max(0, b.classIndex ?? classes.indexOf(b.label)) % SERIES_COLORS.length];
    const [x0, y0] = [Math.max(0, Math.floor(b.x0)), Math.max(0, Math.floor(b.y0))];
    const [x1, y1] = [Math.min(img.width, Math.ceil(b.x1)) - 1, Math.min(img.height, Math.ceil(b.y1)) - 1];
    for (let t = 0; t < 2; t++) {
      for (let x = x0; x <= x1; x++) for (const y of [y0 + t, y1 - t]) paint(img, x, y, c);
      for (let y = y0; y <= y1; y++) for (const x of [x0 + t, x1 - t]) paint(img, x, y, c);
    }
  }
  return img;
}

function paint(img: Rgb, x: number, y: number, [r, g, b]: readonly number[]): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const p = 3 * (y * img.width + x);
  img.data[p] = r;
  img.data[p + 1] = g;
  img.data[p + 2] = b;
}
