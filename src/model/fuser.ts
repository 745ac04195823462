/**
 * The embeddable fusion runtime: load weights once, fuse gray arrays or image files, dispose.
 * The CLI's `fuse` command is built on it.
 */
import { initEngine, noGrad, tidy } from '../graph/engine.ts';
import { Tensor } from '../graph/tensor.ts';
import type { DeviceOptions } from '../runtime/device.ts';
import type { FusionConfig } from './config.ts';
import { FusionNet } from './fusion-net.ts';
import { disposeParameters } from './parameters.ts';
import { loadWeights, loadWeightsWithConfig } from './weights.ts';

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
  /** Foreground attention (same size, values in [0,1]); 0.5 everywhere when absent. */
  attention?: Float32Array;
}

export class Fuser {
  private constructor(private net: FusionNet) {}

  static async create(opts: FuserOptions): Promise<Fuser> {
    await initEngine(opts.device);
    if (opts.config) return new Fuser(new FusionNet(loadWeights(opts.weights, opts.config), opts.config));
    const { params, config } = loadWeightsWithConfig(opts.weights);
    return new Fuser(new FusionNet(params, config));
  }

  /** Fuses one infrared/visible pair of equal size; returns the fused gray image (unclamped floats). */
  async fuse(ir: GrayImage, vis: GrayImage, opts: FuseOptions = {}): Promise<GrayImage> {
    if (ir.width !== vis.width || ir.height !== vis.height)
      throw new Error(`infrared ${ir.width}×${ir.height} and visible ${vis.width}×${vis.height} differ in size`);
    const n = ir.width * ir.height;
    for (const [what, a] of [['infrared', ir.data], ['visible', vis.data], ['attention', opts.attention]] as const)
      if (a && a.length !== n) throw new Error(`${what} has ${a.length} values, expected ${ir.width}×${ir.height} = ${n}`);
    const shape = [1, 1, ir.height, ir.width];
    const fused = noGrad(() =>
      tidy(() => {
        const att = opts.attention ? Tensor.fromArray(opts.attention, shape) : null;
        return this.net.forward(Tensor.fromArray(ir.data, shape), Tensor.fromArray(vis.data, shape), att).fused;
      }),
    );
    const data = await fused.data();
    fused.dispose();
    return { width: ir.width, height: ir.height, data };
  }

  dispose(): void {
    disposeParameters(this.net.params);
  }
}
