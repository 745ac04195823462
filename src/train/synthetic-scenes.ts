/**
 * Synthetic infrared/visible pairs with known object boxes, for tests and for a quick check that a detector learns.
 *
 * A scene is a ground plane (with an optional sky and skyline above a horizon), a warm road band, warm distractors
 * (small hot spots, an occasional warm round blob) and 1..maxObjects objects of two classes named as in M3FD:
 * `People` (upright, body + head + legs) and `Car` (side view: body, cabin, wheels, a hot engine spot).
 * Infrared: objects are warm with internal variation and a soft edge, the background cool and textured.
 * Visible: textured, unevenly lit (gradient, vignette, a soft shadow, sometimes night), objects with random albedo
 * that is sometimes close to the background's, so that only the infrared shows them; sensor noise in both.
 *
 * Each object's box is its drawn extent in continuous pixel coordinates (see io/boxes.ts): every shape touches its
 * box's four sides and nothing of it is drawn outside. Everything is fixed by the seed.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../util/rng.ts';
import { ensureWritableDir, forgetTemporary, OutputError, tempPathFor, trackTemporary } from '../io/atomic.ts';
import type { Box } from '../io/boxes.ts';
import { writeImage } from '../io/image.ts';

export const SYNTHETIC_CLASSES = ['People', 'Car'] as const;

export interface SceneOptions {
  width: number;
  height: number;
  /** At most this many objects (default 5); fewer when they do not fit without overlapping. */
  maxObjects?: number;
  /** At least this many objects are attempted (default 1; 0 allows empty scenes). */
  minObjects?: number;
  /** An object's longer side in pixels, at least (default 8% of the image's shorter side, 10 at 128×128). */
  minSize?: number;
  /** An object's longer side in pixels, at most (default 31% of the shorter side, 40 at 128×128). */
  maxSize?: number;
}

export interface SyntheticScene {
  /** Gray values in [0, 1], row-major width×height. */
  ir: Float32Array;
  vis: Float32Array;
  boxes: Box[];
}

// ---------------------------------------------------------------------------------------------------------------
// Seeds and noise

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A 32-bit generator seed from any safe integer and a stream number, so that nearby seeds give unrelated scenes. */
export function sceneSeed(seed: number, stream = 0): number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`the seed must be an integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return mix32((mix32(lo ^ mix32(hi + 0x9e3779b9)) + Math.imul(stream + 1, 0x85ebca6b)) >>> 0) || 1;
}

/** A lattice value in [-1, 1] for integer coordinates, fixed by salt. */
function lattice(ix: number, iy: number, salt: number): number {
  let h = Math.imul(ix, 0x27d4eb2d) ^ Math.imul(iy, 0x165667b1) ^ salt;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2147483648 - 1;
}

/** Smooth value noise: lattice values blended with a smoothstep. */
function valueNoise(x: number, y: number, salt: number): number {
  const ix = Math.floor(x);
  const iy = Math.floor(y);
  let fx = x - ix;
  let fy = y - iy;
  fx = fx * fx * (3 - 2 * fx);
  fy = fy * fy * (3 - 2 * fy);
  const a = lattice(ix, iy, salt);
  const b = lattice(ix + 1, iy, salt);
  const c = lattice(ix, iy + 1, salt);
  const d = lattice(ix + 1, iy + 1, salt);
  return a + (b - a) * fx + (c - a) * fy + (a - b - c + d) * fx * fy;
}

/** Fractal value noise: `octaves` layers, the first with cells of `cell` pixels, each finer one half as strong. */
class Fbm {
  private salts: number[] = [];
  private offsets: number[] = [];
  constructor(rng: Rng, private cell: number, private octaves: number) {
    for (let o = 0; o < octaves; o++) {
      this.salts.push((rng.next() * 4294967296) | 0);
      this.offsets.push(rng.next() * 1000, rng.next() * 1000);
    }
  }
  /** Roughly in [-1, 1], mostly within ±0.5. */
  at(x: number, y: number): number {
    let sum = 0;
    let amp = 1;
    let norm = 0;
    let f = 1 / this.cell;
    for (let o = 0; o < this.octaves; o++) {
      sum += amp * valueNoise(x * f + this.offsets[2 * o], y * f + this.offsets[2 * o + 1], this.salts[o]);
      norm += amp;
      amp *= 0.5;
      f *= 2;
    }
    return sum / norm;
  }
}

const between = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng.next();
const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const smooth = (t: number) => (t <= 0 ? 0 : t >= 1 ? 1 : t * t * (3 - 2 * t));

/** Standard normal samples (Box-Muller, both outputs used: the sensor noise needs two per pixel). */
function normals(rng: Rng): () => number {
  let spare = NaN;
  return () => {
    if (!Number.isNaN(spare)) {
      const v = spare;
      spare = NaN;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(Math.max(1e-12, rng.next())));
    const a = 2 * Math.PI * rng.next();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes as signed distances (pixels; negative inside)

function sdRoundRect(px: number, py: number, x0: number, y0: number, x1: number, y1: number, r: number): number {
  const qx = Math.abs(px - (x0 + x1) / 2) - ((x1 - x0) / 2 - r);
  const qy = Math.abs(py - (y0 + y1) / 2) - ((y1 - y0) / 2 - r);
  const ox = Math.max(qx, 0);
  const oy = Math.max(qy, 0);
  return Math.sqrt(ox * ox + oy * oy) + Math.min(Math.max(qx, qy), 0) - r;
}

function sdCircle(px: number, py: number, cx: number, cy: number, r: number): number {
  return Math.hypot(px - cx, py - cy) - r;
}

/** One part of an object: its shape, its infrared warmth (× the object's contrast) and visible albedo. */
interface Part {
  sd: (x: number, y: number) => number;
  warmth: number;
  albedo: number;
}

interface PlacedObject {
  box: Box;
  parts: Part[];
  /** Infrared contrast above the ground level. */
  contrast: number;
  /** An extra hot spot (car engine): centre, radius, strength. */
  hot?: { x: number; y: number; r: number; k: number };
}

function personParts(b: Box, rng: Rng, albedo: () => number): Part[] {
  const w = b.x1 - b.x0;
  const h = b.y1 - b.y0;
  const cx = (b.x0 + b.x1) / 2;
  const hr = Math.min(0.068 * h, 0.3 * w);
  const neck = b.y0 + 1.8 * hr;
  const hip = b.y0 + between(rng, 0.5, 0.56) * h;
  const torso = 0.32 * w; // half width; the arms hang outside it and touch the box's sides
  const arm = 0.2 * w;
  const leg = 0.27 * w;
  const gap = between(rng, 0.04, 0.3) * w; // feet apart: standing or walking
  const skin = albedo();
  const shirt = albedo();
  const pants = albedo();
  const round = (x0: number, y0: number, x1: number, y1: number, r: number) => (x: number, y: number) => sdRoundRect(x, y, x0, y0, x1, y1, r);
  return [
    { sd: round(cx - torso, neck, cx + torso, hip + 0.05 * h, 0.25 * w), warmth: 0.75, albedo: shirt },
    { sd: round(b.x0, neck + 0.02 * h, b.x0 + arm, hip + 0.02 * h, arm / 2), warmth: 0.8, albedo: shirt },
    { sd: round(b.x1 - arm, neck + 0.02 * h, b.x1, hip + 0.02 * h, arm / 2), warmth: 0.8, albedo: shirt },
    { sd: round(cx - gap / 2 - leg, hip, cx - gap / 2, b.y1, leg / 2.5), warmth: 0.65, albedo: pants },
    { sd: round(cx + gap / 2, hip, cx + gap / 2 + leg, b.y1, leg / 2.5), warmth: 0.65, albedo: pants },
    { sd: (x, y) => sdCircle(x, y, cx, b.y0 + hr, hr), warmth: 1, albedo: skin },
  ];
}

function carParts(b: Box, rng: Rng, albedo: () => number): { parts: Part[]; hot: PlacedObject['hot'] } {
  const w = b.x1 - b.x0;
  const h = b.y1 - b.y0;
  const wheelR = 0.2 * h;
  const bodyTop = b.y0 + between(rng, 0.35, 0.45) * h;
  const bodyBottom = b.y1 - wheelR * 0.8;
  const cab0 = b.x0 + between(rng, 0.15, 0.3) * w;
  const cab1 = b.x1 - between(rng, 0.15, 0.3) * w;
  const facingRight = rng.next() < 0.5;
  const paint = albedo();
  const glass = between(rng, 0.05, 0.2);
  const tyre = between(rng, 0.03, 0.1);
  const wx = [b.x0 + 0.2 * w, b.x1 - 0.2 * w];
  const wheelY = b.y1 - wheelR;
  const parts: Part[] = [
    { sd: (x, y) => sdRoundRect(x, y, b.x0, bodyTop, b.x1, bodyBottom, 0.18 * h), warmth: 0.55, albedo: paint },
    { sd: (x, y) => sdRoundRect(x, y, cab0, b.y0, cab1, bodyTop + 0.1 * h, 0.15 * h), warmth: 0.5, albedo: paint },
    // Windows: cold in infrared (glass reflects the sky), dark in the visible.
    { sd: (x, y) => sdRoundRect(x, y, cab0 + 0.06 * h, b.y0 + 0.08 * h, cab1 - 0.06 * h, bodyTop, 0.08 * h), warmth: 0.1, albedo: glass },
    ...wx.map((cx): Part => ({ sd: (x, y) => sdCircle(x, y, cx, wheelY, wheelR), warmth: 0.9, albedo: tyre })),
  ];
  const hot = { x: facingRight ? b.x1 - 0.15 * w : b.x0 + 0.15 * w, y: (bodyTop + bodyBottom) / 2, r: 0.3 * h, k: between(rng, 0.3, 0.6) };
  return { parts, hot };
}

// ---------------------------------------------------------------------------------------------------------------
// Placement

function overlapsTooMuch(a: Box, b: Box): boolean {
  const iw = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const ih = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  if (iw <= 0 || ih <= 0) return false;
  const area = (r: Box) => (r.x1 - r.x0) * (r.y1 - r.y0);
  // Against the smaller box, so that a small object is never hidden inside a large one (and IoU < 0.1).
  return iw * ih >= 0.1 * Math.min(area(a), area(b));
}

interface Resolved {
  width: number;
  height: number;
  minObjects: number;
  maxObjects: number;
  minSize: number;
  maxSize: number;
}

function resolveOptions(o: SceneOptions): Resolved {
  const { width, height } = o;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`the image size must be positive integers, got ${width}×${height}`);
  const side = Math.min(width, height);
  const minSize = o.minSize ?? Math.max(2, Math.round(0.08 * side));
  const maxSize = o.maxSize ?? Math.max(minSize, Math.round(0.31 * side));
  const maxObjects = o.maxObjects ?? 5;
  const minObjects = Math.min(o.minObjects ?? 1, maxObjects);
  if (!(minSize >= 1 && maxSize >= minSize)) throw new RangeError(`object sizes ${minSize}..${maxSize}: expected 1 ≤ minSize ≤ maxSize`);
  if (maxSize > side) throw new RangeError(`object size ${maxSize} does not fit in a ${width}×${height} image`);
  if (!Number.isInteger(maxObjects) || maxObjects < 0 || !Number.isInteger(minObjects) || minObjects < 0)
    throw new RangeError(`object counts ${minObjects}..${maxObjects}: expected non-negative integers`);
  return { width, height, minObjects, maxObjects, minSize, maxSize };
}

/** Boxes for the scene's objects: class, log-uniform size, standing below the horizon where possible. */
function placeBoxes(rng: Rng, o: Resolved, horizon: number): Box[] {
  const n = o.minObjects + rng.int(o.maxObjects - o.minObjects + 1);
  const boxes: Box[] = [];
  for (let k = 0; k < n; k++) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const label = SYNTHETIC_CLASSES[rng.int(2)];
      const size = o.minSize * Math.pow(o.maxSize / o.minSize, rng.next());
      const aspect = label === 'People' ? between(rng, 0.35, 0.5) : between(rng, 1.6, 2.5);
      const w = label === 'People' ? size * aspect : size;
      const h = label === 'People' ? size : size / aspect;
      const x0 = rng.next() * (o.width - w);
      const lowest = Math.max(h, Math.min(horizon + 0.3 * h, o.height)); // feet or wheels on the ground
      const y1 = lowest + rng.next() * (o.height - lowest);
      const box = { label, x0, y0: y1 - h, x1: x0 + w, y1 };
      if (boxes.every((b) => !overlapsTooMuch(b, box))) {
        boxes.push(box);
        break;
      }
    }
  }
  return boxes;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** A synthetic infrared/visible pair and its object boxes, fixed by the seed. */
export function syntheticScene(seed: number, opts: SceneOptions): SyntheticScene {
  const o = resolveOptions(opts);
  const { width: W, height: H } = o;
  const rng = new Rng(sceneSeed(seed));
  const scale = Math.min(W, H) / 128; // texture and distractor sizes follow the image
  const ir = new Float32Array(W * H);
  const albedo = new Float32Array(W * H);

  // Layout: horizon (none in a third of the scenes: a view of the ground), a road band, a skyline.
  const horizon = rng.next() < 0.33 ? 0 : Math.round(between(rng, 0.15, 0.45) * H);
  const roadY = horizon + between(rng, 0.3, 0.8) * (H - horizon);
  const roadSlope = between(rng, -0.25, 0.25);
  const roadHalf = between(rng, 0.05, 0.12) * H;
  const roadWarm = between(rng, 0.06, 0.16);
  const roadAlbedo = between(rng, 0.12, 0.3);
  const groundT = between(rng, 0.2, 0.4);
  const skyT = between(rng, 0.05, 0.15);
  const groundA = between(rng, 0.3, 0.6);
  const skyA = between(rng, 0.65, 0.95);
  const buildings: Array<{ x0: number; x1: number; top: number; t: number; a: number }> = [];
  if (horizon > 0) {
    for (let x = -rng.next() * 20 * scale; x < W; ) {
      const bw = between(rng, 12, 40) * scale;
      if (rng.next() < 0.7) buildings.push({ x0: x, x1: x + bw, top: horizon - between(rng, 0.2, 0.9) * horizon, t: between(rng, 0.15, 0.3), a: between(rng, 0.25, 0.7) });
      x += bw + between(rng, 0, 8) * scale;
    }
  }
  const shared = new Fbm(rng, 24 * scale, 3); // structure seen in both modalities
  const irTexture = new Fbm(rng, 12 * scale, 2);
  const visTexture = new Fbm(rng, 6 * scale, 3);

  for (let i = 0; i < H; i++) {
    const y = i + 0.5;
    for (let j = 0; j < W; j++) {
      const x = j + 0.5;
      const s = shared.at(x, y);
      let t: number;
      let a: number;
      if (y < horizon) {
        const up = y / horizon;
        t = skyT + 0.05 * up + 0.02 * s;
        a = skyA - 0.15 * (1 - up) + 0.03 * s;
        for (const b of buildings) {
          if (x >= b.x0 && x < b.x1 && y >= b.top) {
            t = b.t + 0.03 * s;
            a = b.a + 0.08 * s;
          }
        }
      } else {
        t = groundT + 0.12 * s + 0.05 * irTexture.at(x, y);
        a = groundA + 0.2 * s + 0.15 * visTexture.at(x, y);
        const d = Math.abs(y - (roadY + roadSlope * (x - W / 2))) / roadHalf; // 0 on the road's centre line
        const road = 1 - smooth((d - 0.85) / 0.3);
        if (road > 0) {
          t += road * roadWarm;
          a += road * (roadAlbedo + 0.05 * visTexture.at(x, y) - a);
          // Dashed centre line, visible only.
          if (d < 0.06 && Math.floor(x / (10 * scale)) % 2 === 0) a = 0.85;
        }
      }
      ir[i * W + j] = t;
      albedo[i * W + j] = a;
    }
  }

  // Warm distractors: small hot spots (lamps, vents) and sometimes a warm round blob (a bush, a manhole).
  const spots = 2 + rng.int(5);
  for (let k = 0; k < spots; k++) {
    const cx = rng.next() * W;
    const cy = rng.next() * H;
    const sigma = between(rng, 0.6, 2.5) * scale;
    const amp = between(rng, 0.2, 0.5);
    const lit = rng.next() < 0.4; // a lamp: bright in the visible too
    stamp(cx, cy, 3 * sigma, (px, py) => {
      const g = amp * Math.exp(-((px - cx) ** 2 + (py - cy) ** 2) / (2 * sigma * sigma));
      return [g, lit ? g : 0];
    });
  }
  if (rng.next() < 0.5) {
    const cx = rng.next() * W;
    const cy = horizon + rng.next() * (H - horizon);
    const rx = between(rng, o.minSize / 2, o.maxSize / 2);
    const ry = rx * between(rng, 0.6, 1.2);
    const amp = between(rng, 0.08, 0.2);
    stamp(cx, cy, Math.max(rx, ry), (px, py) => {
      const r = Math.hypot((px - cx) / rx, (py - cy) / ry);
      return [amp * (1 - smooth((r - 0.7) / 0.3)), 0];
    });
  }

  function stamp(cx: number, cy: number, radius: number, f: (x: number, y: number) => [number, number]): void {
    for (let i = Math.max(0, Math.floor(cy - radius)); i < Math.min(H, Math.ceil(cy + radius)); i++)
      for (let j = Math.max(0, Math.floor(cx - radius)); j < Math.min(W, Math.ceil(cx + radius)); j++) {
        const [dt, da] = f(j + 0.5, i + 0.5);
        ir[i * W + j] += dt;
        albedo[i * W + j] += da;
      }
  }

  // Objects.
  const boxes = placeBoxes(rng, o, horizon);
  const objects: PlacedObject[] = boxes.map((box) => {
    // A third of the objects are camouflaged in the visible: albedo close to the ground's.
    const camouflaged = rng.next() < 0.3;
    const pick = () => clamp01(camouflaged ? groundA + between(rng, -0.06, 0.06) : between(rng, 0.05, 0.95));
    const contrast = between(rng, 0.3, 0.55);
    if (box.label === 'People') return { box, parts: personParts(box, rng, pick), contrast };
    const { parts, hot } = carParts(box, rng, pick);
    return { box, parts, contrast, hot };
  });
  const warmVariation = new Fbm(rng, 3 * scale, 2);
  for (const ob of objects) drawObject(ob);

  function drawObject(ob: PlacedObject): void {
    const { box, parts, contrast, hot } = ob;
    const soft = Math.max(1, 0.06 * Math.min(box.x1 - box.x0, box.y1 - box.y0) + 0.5);
    for (let i = Math.floor(box.y0); i < Math.ceil(box.y1); i++) {
      for (let j = Math.floor(box.x0); j < Math.ceil(box.x1); j++) {
        const x = j + 0.5;
        const y = i + 0.5;
        // The outline is the union of the parts; the material is the last part (windows, wheels and legs lie on
        // top) that contains the pixel centre, else the nearest part.
        let d = Infinity;
        let part = parts[0];
        let inside = false;
        for (const p of parts) {
          const dp = p.sd(x, y);
          if (dp < 0) {
            part = p;
            inside = true;
          } else if (!inside && dp < d) part = p;
          d = Math.min(d, dp);
        }
        const cover = clamp01(0.5 - d);
        if (cover <= 0) continue;
        const at = i * W + j;
        let warm = contrast * part.warmth * (1 + 0.35 * warmVariation.at(x, y));
        if (hot) warm += hot.k * Math.exp(-((x - hot.x) ** 2 + (y - hot.y) ** 2) / (hot.r * hot.r));
        // Soft edge: the warmth ramps up over `soft` pixels inside the outline.
        const edge = 0.4 + 0.6 * smooth(-d / soft);
        const target = groundT + warm;
        ir[at] += cover * edge * (target - ir[at]);
        albedo[at] += cover * (part.albedo * (1 + 0.1 * warmVariation.at(y, x)) - albedo[at]);
      }
    }
  }

  // Visible illumination: global level (a quarter of the scenes at night), gradient, vignette, a soft shadow.
  const night = rng.next() < 0.25;
  const gain = night ? between(rng, 0.15, 0.4) : between(rng, 0.8, 1.1);
  const angle = rng.next() * 2 * Math.PI;
  const slope = between(rng, 0, 0.6);
  const vignette = between(rng, 0, 0.5);
  const shadow = rng.next() < 0.6 ? { x: rng.next() * W, y: rng.next() * H, r: between(rng, 0.2, 0.6) * Math.max(W, H), depth: between(rng, 0.3, 0.65) } : null;
  const visNoise = night ? between(rng, 0.02, 0.04) : between(rng, 0.008, 0.025);
  const irNoise = between(rng, 0.006, 0.018);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const half = Math.hypot(W, H) / 2;
  const vis = new Float32Array(W * H);
  const gauss = normals(rng);
  const column = new Float32Array(W);
  for (let j = 0; j < W; j++) column[j] = 0.004 * gauss(); // infrared column offsets (fixed-pattern noise)
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const dx = j + 0.5 - W / 2;
      const dy = i + 0.5 - H / 2;
      let light = gain * (1 + slope * (dx * cos + dy * sin) / half) * (1 - vignette * (dx * dx + dy * dy) / (half * half));
      if (shadow) light *= 1 - shadow.depth * (1 - smooth((Math.hypot(j - shadow.x, i - shadow.y) / shadow.r - 0.8) / 0.4));
      const at = i * W + j;
      vis[at] = clamp01(albedo[at] * light + visNoise * gauss());
      ir[at] = clamp01(ir[at] + column[j] + irNoise * gauss());
    }
  }
  return { ir, vis, boxes };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing a dataset in M3FD's layout

/** A box grown outwards to whole pixels (what a VOC file can hold). */
export function roundBoxOutwards(b: Box): Box {
  return { label: b.label, x0: Math.floor(b.x0), y0: Math.floor(b.y0), x1: Math.ceil(b.x1), y1: Math.ceil(b.y1) };
}

/** A VOC annotation; bndbox holds 1-based inclusive pixel indices (boxes.ts), the box rounded outwards. */
export function vocXml(filename: string, width: number, height: number, boxes: Box[]): string {
  const objects = boxes.map((box) => {
    const b = roundBoxOutwards(box);
    return [
      '  <object>',
      `    <name>${b.label}</name>`,
      '    <pose>Unspecified</pose>',
      '    <truncated>0</truncated>',
      '    <difficult>0</difficult>',
      `    <bndbox><xmin>${b.x0 + 1}</xmin><ymin>${b.y0 + 1}</ymin><xmax>${b.x1}</xmax><ymax>${b.y1}</ymax></bndbox>`,
      '  </object>',
    ].join('\n');
  });
  return [
    '<annotation>',
    '  <folder>Vis</folder>',
    `  <filename>${filename}</filename>`,
    '  <source><database>moefusion synthetic</database></source>',
    `  <size><width>${width}</width><height>${height}</height><depth>1</depth></size>`,
    ...objects,
    '</annotation>',
    '',
  ].join('\n');
}

/** Gray values in [0, 1] as 8-bit pixels. */
export function toGray8(v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.round(clamp01(v[i]) * 255);
  return out;
}

export interface SyntheticDatasetOptions extends SceneOptions {
  count: number;
  /** Image k uses the scene seed sceneSeed(seed, k): a larger count only adds images. */
  seed: number;
  /** Called after each pair is written (progress). */
  onImage?: (done: number, total: number) => void;
}

export interface SyntheticDatasetSummary {
  dir: string;
  count: number;
  /** Objects written, per class. */
  objects: Record<string, number>;
}

export const SYNTHETIC_FOLDERS = { ir: 'Ir', vis: 'Vis', labels: 'Annotation' } as const;

/** The file stem of image k: five digits from 00000, as in M3FD. */
export const syntheticName = (k: number) => String(k).padStart(5, '0');

/** The scene of image k of a dataset written with this seed. */
export function syntheticDatasetScene(seed: number, k: number, opts: SceneOptions): SyntheticScene {
  return syntheticScene(sceneSeed(seed, k + 1), opts);
}

function checkTarget(dir: string): boolean {
  if (!existsSync(dir)) return false;
  if (!statSync(dir).isDirectory()) throw new OutputError(dir, 'exists and is not a folder');
  const entries = readdirSync(dir);
  if (entries.length)
    throw new OutputError(dir, `the folder is not empty (${entries.length} entries, e.g. ${entries[0]}); choose a new or empty folder`);
  return true;
}

/**
 * Writes `count` synthetic pairs to dir in M3FD's layout: Ir/NNNNN.png, Vis/NNNNN.png (8-bit gray) and
 * Annotation/NNNNN.xml (VOC). dir must be new or empty: nothing there is touched otherwise. The three folders are
 * written inside a hidden staging folder and renamed into place at the end, so a failure leaves no partial dataset.
 */
export async function writeSyntheticDataset(dir: string, opts: SyntheticDatasetOptions): Promise<SyntheticDatasetSummary> {
  const { count, seed, onImage, ...sceneOpts } = opts;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`the image count must be a positive integer, got ${count}`);
  resolveOptions(sceneOpts); // fail on bad options before creating anything
  sceneSeed(seed);
  const existed = checkTarget(dir);
  ensureWritableDir(dir, 'output folder'); // recorded: removed again if the run ends (or is interrupted) before its first pair
  const staging = tempPathFor(join(dir, 'synth'));
  trackTemporary(staging);
  const moved: string[] = [];
  const objects: Record<string, number> = Object.fromEntries(SYNTHETIC_CLASSES.map((c) => [c, 0]));
  try {
    for (const sub of Object.values(SYNTHETIC_FOLDERS)) mkdirSync(join(staging, sub), { recursive: true });
    const { width, height } = sceneOpts;
    for (let k = 0; k < count; k++) {
      const scene = syntheticDatasetScene(seed, k, sceneOpts);
      const name = syntheticName(k);
      for (const b of scene.boxes) objects[b.label]++;
      await Promise.all([
        writeImage(join(staging, SYNTHETIC_FOLDERS.ir, `${name}.png`), toGray8(scene.ir), width, height, 1),
        writeImage(join(staging, SYNTHETIC_FOLDERS.vis, `${name}.png`), toGray8(scene.vis), width, height, 1),
        writeFile(join(staging, SYNTHETIC_FOLDERS.labels, `${name}.xml`), vocXml(`${name}.png`, width, height, scene.boxes)),
      ]);
      onImage?.(k + 1, count);
    }
    for (const sub of Object.values(SYNTHETIC_FOLDERS)) {
      renameSync(join(staging, sub), join(dir, sub));
      moved.push(join(dir, sub));
    }
    rmdirSync(staging);
    forgetTemporary(staging);
  } catch (e) {
    // Only what this call created: the staging folder, folders already moved, and dir if it was new.
    rmSync(staging, { recursive: true, force: true });
    forgetTemporary(staging);
    for (const m of moved) rmSync(m, { recursive: true, force: true });
    if (!existed) {
      try {
        rmdirSync(dir); // only if empty: never anything that appeared there meanwhile
      } catch {
        // Left in place.
      }
    }
    throw e;
  }
  return { dir, count, objects };
}
