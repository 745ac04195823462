/**
 * The embeddable fusion runtime: load weights once (the shipped ones by default, or a path, a URL or bytes), fuse
 * pairs given in any common form (file paths, encoded bytes, sharp's raw output, ImageData-like RGBA, gray floats),
 * get the result in any of them back. Every input is checked before any GPU work. The CLI's `fuse` is built on it.
 */
import { initEngine, engine, noGrad, tidy } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { DeviceOptions } from '../runtime/device.ts';
import { LimitError } from '../runtime/errors.ts';
import type { FusionConfig } from './config.ts';
import { FORWARD_STAGES, GLOBAL_CHANNELS, type FusionNet } from './fusion-net.ts';
import { weightsFromFile } from './weights.ts';
import { readWeights, type WeightsSource } from './weights-source.ts';
import { fusionAttention, type Detector, type DetectorOutput } from './detector/network.ts';
import { detectorFromFile, hasDetector } from './detector/weights.ts';
import { decodeDetections, type Detection } from './detector/decode.ts';
import { checkPair, checkUnitRange, InputError, toPlanes, type GrayImage, type PixelInput, type Planes } from '../io/pixels.ts';
import { decodeBytes, isNode, readImageFile } from '../io/codec.ts';
import { FusedImage } from '../io/fused-image.ts';
import { DEFAULT_RANGE, OUTPUT_RANGES, type OutputRange } from '../io/output-range.ts';
import { CLASSIC_METHODS, classicFusion, type ClassicMethod } from './classic-fusion.ts';
import { infraredSaliency } from './saliency.ts';
import { ATTENTION_CHOICES, resolveAttention, type AttentionChoice, type InferenceAttention } from './attention.ts';

export type { GrayImage };

export type { WeightsSource };

/** An image: a file path (Node), encoded bytes (PNG, JPEG, …) or a Blob/File holding them, or pixels in memory (see PixelInput). */
export type ImageSource = string | Uint8Array | ArrayBuffer | Blob | PixelInput;

export interface FuserOptions {
  /**
   * Default: the weights shipped with the package (weights/moefusion.safetensors, found relative to this module).
   * In a browser pass their URL: a bundler moves the module, and the page's server decides where the file is.
   */
  weights?: WeightsSource;
  /** Overrides the configuration stored in the weights file. */
  config?: FusionConfig;
  device?: DeviceOptions;
}

export interface FuseOptions {
  /**
   * Att, the foreground map of the mixtures: a map (same size, values in [0,1]); 'detector', the detectors' map (the
   * weights must carry detectors); 'saliency', the infrared image's brightness saliency; 'none', 0.5 everywhere;
   * 'auto' (default): what the weights were trained with (their detectors, else their recorded mode, else none).
   */
  attention?: Float32Array | AttentionChoice;
  /** Colour output: the fused image as the luma of the visible image (when it has colour). Default false. */
  color?: boolean;
  /**
   * How the network's output becomes the saved range: 'clamp' to [0,1] (the reference), or 'stretch', clamp and then
   * map the image's min..max to the full range (what the published peers' test code does before saving). Default
   * 'stretch' (RESULTS.md: better on 7 of 8 validation metrics with the shipped weights); 'clamp' keeps frames of a video
   * comparable.
   */
  range?: OutputRange;
  /** Called as the GPU finishes each stage of the network (encoders, gates, experts), for progress displays. */
  onStage?: (stage: string, done: number, total: number) => void;
}

export interface DetectOptions {
  scoreThreshold?: number;
  iouThreshold?: number;
}

export interface DetectResult {
  /** Boxes of the visible and the infrared detector, and of both merged by one class-wise NMS. */
  vis: Detection[];
  ir: Detection[];
  both: Detection[];
  /** The fusion network's Att for this pair (row-major, the image's size). */
  attention: Float32Array;
}

/**
 * The weights shipped with the package, next to src/ or dist/ (from dist/web/moefusion.js too: two folders up). A
 * bundle that inlines this module resolves it against the bundle's own URL instead.
 */
export const SHIPPED_WEIGHTS = new URL('../../weights/moefusion.safetensors', import.meta.url);

export class Fuser {
  private disposed = false;

  private constructor(
    private net: FusionNet,
    /** The auxiliary detectors, when the weights file carries them. */
    readonly detector: Detector | null,
    /** Where the weights came from (a path, a URL, or "weights (bytes)"). */
    readonly source: string,
    /** The weights file's metadata (training steps, recorded attention mode, …). */
    readonly metadata: Record<string, string>,
  ) {}

  static async create(opts: FuserOptions = {}): Promise<Fuser> {
    const { file, source } = await readWeights(opts.weights ?? SHIPPED_WEIGHTS).catch((e: unknown) => {
      if (opts.weights === undefined && !isNode && e instanceof InputError)
        throw new InputError(`${e.message}; in a browser pass the weights' URL: Fuser.create({ weights: 'https://…/moefusion.safetensors' })`);
      throw e;
    });
    await initEngine(opts.device);
    const net = weightsFromFile(file, source, opts.config);
    try {
      return new Fuser(net, hasDetector(file) ? detectorFromFile(file, source) : null, source, file.metadata);
    } catch (e) {
      net.dispose();
      throw e;
    }
  }

  get config(): FusionConfig {
    return this.net.config;
  }

  /** Its weights are gone after dispose(): say so, rather than fail somewhere inside the network. */
  private requireLive(method: string): void {
    if (this.disposed) throw new Error(`Fuser.${method}: this Fuser was disposed (dispose() released its weights); create another with Fuser.create()`);
  }

  private requireDetector(): Detector {
    if (!this.detector) throw new InputError(`${this.source} carries no detector: train one with \`moefusion train --attention detector\``);
    return this.detector;
  }

  /** Decodes and checks a pair (infrared: first channel; visible: BT.601 luma). */
  async planes(ir: ImageSource, vis: ImageSource): Promise<[Planes, Planes]> {
    this.requireLive('planes');
    const pair: [Planes, Planes] = [await resolveImage(ir, 'infrared', 'infrared'), await resolveImage(vis, 'visible', 'visible')];
    checkPair(...pair);
    checkFits(pair[0].width, pair[0].height);
    return pair;
  }

  /** Runs the detectors on a pair: boxes (in pixels of the pair) and the attention map. */
  async detect(ir: ImageSource, vis: ImageSource, opts: DetectOptions = {}): Promise<DetectResult> {
    this.requireLive('detect');
    const detector = this.requireDetector();
    const [i, v] = await this.planes(ir, vis);
    const shape = [1, 1, i.height, i.width];
    const decodeOpts = { classNames: detector.config.classes, imageWidth: i.width, imageHeight: i.height, ...opts };
    const out = noGrad(() => tidy(() => detector.forward(Tensor.fromArray(i.gray, shape), Tensor.fromArray(v.gray, shape))));
    try {
      const att = fusionAttention(out, i.height, i.width);
      const [[vd], [id], [both], attention] = await Promise.all([
        decodeDetections(out.heads.vis, decodeOpts),
        decodeDetections(out.heads.ir, decodeOpts),
        decodeDetections([...out.heads.vis, ...out.heads.ir], decodeOpts),
        att.data(),
      ]);
      att.dispose();
      return { vis: vd, ir: id, both, attention };
    } finally {
      disposeOutput(out);
    }
  }

  /** Fuses one infrared/visible pair of equal size. */
  async fuse(ir: ImageSource, vis: ImageSource, opts: FuseOptions = {}): Promise<FusedImage> {
    this.requireLive('fuse');
    const [i, v] = await this.planes(ir, vis);
    const { width, height } = i;
    const given = opts.attention ?? 'auto';
    let map: Float32Array | null = null;
    let mode: InferenceAttention | 'map' = 'map';
    if (given instanceof Float32Array) {
      if (given.length !== width * height) throw new InputError(`attention has ${given.length} values, expected ${width}×${height} = ${width * height}`);
      checkUnitRange(given, width, 'attention');
      map = given;
    } else if (ATTENTION_CHOICES.includes(given)) mode = resolveAttention(given, !!this.detector, this.metadata);
    else throw new InputError(`attention must be a Float32Array or one of ${ATTENTION_CHOICES.map((c) => `'${c}'`).join(', ')}, got ${String(given)}`);
    if (mode === 'saliency') map = infraredSaliency(i.gray);
    const detector = mode === 'detector' ? this.requireDetector() : null;
    const shape = [1, 1, height, width];
    const rt = engine().rt;
    let done = 0;
    const { onStage } = opts;
    if (onStage) rt.onMark = (stage) => onStage(stage, ++done, FORWARD_STAGES.length);
    try {
      const fused = noGrad(() =>
        tidy(() => {
          const [irT, visT] = [Tensor.fromArray(i.gray, shape), Tensor.fromArray(v.gray, shape)];
          const att = detector ? fusionAttention(detector.forward(irT, visT), height, width) : map ? Tensor.fromArray(map, shape) : null;
          return this.net.forward(irT, visT, att).fused;
        }),
      );
      const data = await fused.data();
      fused.dispose();
      return new FusedImage(width, height, data, colorSource(v, opts.color), checkRange(opts.range));
    } finally {
      rt.onMark = null;
    }
  }

  /** Releases the weights on the GPU; the Fuser cannot be used afterwards. Calling it again does nothing. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.net.dispose();
    this.detector?.dispose();
  }
}

export interface ClassicFuseOptions {
  /** 'max' (max(ir, vis) per pixel) or 'multiscale' (model/classic-fusion.ts). */
  method: ClassicMethod;
  color?: boolean;
  range?: OutputRange;
}

/**
 * Fuses a pair with a training-free method, on the CPU: the baselines trained weights must beat (`moefusion fuse
 * --method`). Takes every input form Fuser.fuse takes.
 */
export async function fuseClassic(ir: ImageSource, vis: ImageSource, opts: ClassicFuseOptions): Promise<FusedImage> {
  if (!CLASSIC_METHODS.includes(opts.method)) throw new InputError(`method must be one of ${CLASSIC_METHODS.join(', ')}, got ${String(opts.method)}`);
  const [i, v] = [await resolveImage(ir, 'infrared', 'infrared'), await resolveImage(vis, 'visible', 'visible')];
  checkPair(i, v);
  const data = classicFusion(opts.method, i.gray, v.gray, i.width, i.height);
  return new FusedImage(i.width, i.height, data, colorSource(v, opts.color), checkRange(opts.range));
}

/** The visible image whose chroma colour output takes, when asked for and it has colour. */
function colorSource(v: Planes, color?: boolean): Planes['image'] | null {
  return color && v.image && v.image.channels >= 3 ? v.image : null;
}

function checkRange(range: OutputRange | undefined): OutputRange {
  if (range !== undefined && !OUTPUT_RANGES.includes(range)) throw new InputError(`range must be one of ${OUTPUT_RANGES.join(', ')}, got ${String(range)}`);
  return range ?? DEFAULT_RANGE;
}

/** The smallest image side the network takes: its 3×3 convolutions and the gates' resize need a few pixels. */
export const MIN_SIDE = 4;

/**
 * Refuses sizes the adapter cannot hold before any work: the largest activation is the 160-channel map of the
 * global experts, which must fit one buffer.
 */
export function checkFits(width: number, height: number): void {
  if (width < MIN_SIDE || height < MIN_SIDE) throw new InputError(`${width}×${height} is too small: both sides must be at least ${MIN_SIDE} pixels`);
  const rt = engine().rt;
  const bytes = GLOBAL_CHANNELS * width * height * 4;
  const max = rt.limits.maxBufferSize;
  if (bytes > max) {
    const side = Math.floor(Math.sqrt(max / (GLOBAL_CHANNELS * 4)));
    throw new LimitError(
      `${width}×${height} needs a ${(bytes / 2 ** 30).toFixed(1)} GiB activation, but this adapter's largest buffer is ${(max / 2 ** 30).toFixed(1)} GiB ` +
        `(about ${side}×${side} pixels at most); downscale or tile the image`,
    );
  }
}

/** Any ImageSource to checked planes; `what` names it in errors. */
async function resolveImage(src: ImageSource, what: string, role: 'infrared' | 'visible'): Promise<Planes> {
  if (typeof src === 'string') return toPlanes(await readImageFile(src), src, role);
  if (src instanceof ArrayBuffer) return toPlanes(await decodeBytes(new Uint8Array(src), what), what, role);
  if (src instanceof Uint8Array) return toPlanes(await decodeBytes(src, what), what, role);
  if (typeof Blob !== 'undefined' && src instanceof Blob) {
    const name = (src as File).name ? `${what} (${(src as File).name})` : what;
    return toPlanes(await decodeBytes(new Uint8Array(await src.arrayBuffer()), name), name, role);
  }
  return toPlanes(src as PixelInput, what, role);
}

/** Releases a detector pass returned from tidy (its heads are decoded asynchronously). */
function disposeOutput(out: DetectorOutput): void {
  for (const m of ['vis', 'ir'] as const) {
    for (const h of out.heads[m]) for (const t of [h.heat, h.size, h.offset]) t.dispose();
    for (const t of out.attention[m]) t.dispose();
  }
}
