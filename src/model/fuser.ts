/**
 * The embeddable fusion runtime: load weights once, fuse gray arrays or image files, dispose.
 * The CLI's `fuse` command is built on it.
 */
import { initEngine, noGrad, tidy } from '../tensor/engine.ts';
import { Tensor } from '../tensor/tensor.ts';
import type { DeviceOptions } from '../runtime/device.ts';
import type { FusionConfig } from './config.ts';
import { FusionNet } from './fusion-net.ts';
import { disposeParameters } from './parameters.ts';
import { loadWeights, paramsFromStateDict } from './weights.ts';
import { configFromMetadata } from './config.ts';
import { readSafetensors } from '../io/safetensors.ts';
import { Detector, fusionAttention } from './detector/network.ts';
import { detectorFromFile, disposeDetector, hasDetector } from './detector/weights.ts';
import { decodeDetections, type Detection } from './detector/decode.ts';

export interface FuserOptions {
  /** Path of a safetensors weights file (reference state-dict names). */
  weights: string;
  /** Overrides the configuration stored in the weights file. */
  config?: FusionConfig;
  device?: DeviceOptions;
}

export interface GrayImage {
  width: number;
  height: number;
  /** Row-major gray values in [0,1]. */
  data: Float32Array;
}

export interface FuseOptions {
  /**
   * Foreground attention: a map (same size, values in [0,1]), 'detector' (the detectors' Att; the weights must
   * carry detectors), or 0.5 everywhere when absent.
   */
  attention?: Float32Array | 'detector';
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

export class Fuser {
  private constructor(
    private net: FusionNet,
    /** The auxiliary detectors, when the weights file carries them. */
    readonly detector: Detector | null,
  ) {}

  static async create(opts: FuserOptions): Promise<Fuser> {
    await initEngine(opts.device);
    const file = readSafetensors(opts.weights);
    const config = opts.config ?? configFromMetadata(file.metadata['moefusion.config']);
    const params = opts.config ? loadWeights(opts.weights, opts.config) : paramsFromStateDict(file.tensors, opts.weights, config);
    const detector = hasDetector(file) ? detectorFromFile(file, opts.weights) : null;
    return new Fuser(new FusionNet(params, config), detector ? new Detector(detector.tensors, detector.config) : null);
  }

  private requireDetector(): Detector {
    if (!this.detector) throw new Error('these weights carry no detector: train one with `moefusion train --attention detector`');
    return this.detector;
  }

  /** Runs the detectors on a pair: boxes (in pixels of the pair) and the attention map. */
  async detect(ir: GrayImage, vis: GrayImage, opts: DetectOptions = {}): Promise<DetectResult> {
    const detector = this.requireDetector();
    checkPair(ir, vis);
    const shape = [1, 1, ir.height, ir.width];
    const decodeOpts = { classNames: detector.config.classes, imageWidth: ir.width, imageHeight: ir.height, ...opts };
    const out = noGrad(() => tidy(() => detector.forward(Tensor.fromArray(ir.data, shape), Tensor.fromArray(vis.data, shape))));
    try {
      const att = fusionAttention(out, ir.height, ir.width);
      const [[v], [i], [both], attention] = await Promise.all([
        decodeDetections(out.heads.vis, decodeOpts),
        decodeDetections(out.heads.ir, decodeOpts),
        decodeDetections([...out.heads.vis, ...out.heads.ir], decodeOpts),
        att.data(),
      ]);
      att.dispose();
      return { vis: v, ir: i, both, attention };
    } finally {
      disposeOutput(out);
    }
  }

  /** Fuses one infrared/visible pair of equal size; returns the fused gray image (unclamped floats). */
  async fuse(ir: GrayImage, vis: GrayImage, opts: FuseOptions = {}): Promise<GrayImage> {
    checkPair(ir, vis);
    const n = ir.width * ir.height;
    if (opts.attention instanceof Float32Array && opts.attention.length !== n)
      throw new Error(`attention has ${opts.attention.length} values, expected ${ir.width}×${ir.height} = ${n}`);
    const detector = opts.attention === 'detector' ? this.requireDetector() : null;
    const shape = [1, 1, ir.height, ir.width];
    const fused = noGrad(() =>
      tidy(() => {
        const att = detector
          ? fusionAttention(detector.forward(Tensor.fromArray(ir.data, shape), Tensor.fromArray(vis.data, shape)), ir.height, ir.width)
          : opts.attention instanceof Float32Array
            ? Tensor.fromArray(opts.attention, shape)
            : null;
        return this.net.forward(Tensor.fromArray(ir.data, shape), Tensor.fromArray(vis.data, shape), att).fused;
      }),
    );
    const data = await fused.data();
    fused.dispose();
    return { width: ir.width, height: ir.height, data };
  }

  dispose(): void {
    disposeParameters(this.net.params);
    if (this.detector) disposeDetector(this.detector.tensors);
  }
}

function checkPair(ir: GrayImage, vis: GrayImage): void {
  if (ir.width !== vis.width || ir.height !== vis.height)
    throw new Error(`infrared ${ir.width}×${ir.height} and visible ${vis.width}×${vis.height} differ in size`);
  const n = ir.width * ir.height;
  for (const [what, a] of [['infrared', ir.data], ['visible', vis.data]] as const)
    if (a.length !== n) throw new Error(`${what} has ${a.length} values, expected ${ir.width}×${ir.height} = ${n}`);
}

/** Releases a detector pass returned from tidy (its heads are decoded asynchronously). */
function disposeOutput(out: import('./detector/network.ts').DetectorOutput): void {
  for (const m of ['vis', 'ir'] as const) {
    for (const h of out.heads[m]) for (const t of [h.heat, h.size, h.offset]) t.dispose();
    for (const t of out.attention[m]) t.dispose();
  }
}
