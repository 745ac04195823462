/** Raster pictures as RGB buffers the image writer saves: side-by-side image strips, and the series colours. */

export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array; // interleaved RGB
}

function canvas(width: number, height: number, gray = 255): Rgb {
  return { width, height, data: new Uint8Array(width * height * 3).fill(gray) };
}

export const SERIES_COLORS = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
] as const;

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
