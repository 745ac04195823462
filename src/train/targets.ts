/**
 * The pixel loss's targets as images on the CPU, per training sample: the multi-scale fusion that `--target
 * multiscale` trains towards (computed once per decoded image, then cropped with it), and every target in the form a
 * study scores it (scripts/target-study.ts). Training computes the reference and max targets on the GPU instead.
 */
import { maxFusion, multiscaleFusion } from '../model/classic-fusion.ts';
import type { Target } from './options.ts';

export interface TargetSources {
  width: number;
  height: number;
  ir: Float32Array;
  vis: Float32Array;
  /** The foreground M of the reference target (the box mask, else the saliency); zeros when absent. */
  foreground?: Float32Array;
}

export interface TargetOptions {
  /** The multi-scale target's factor on its detail layers (default 1). */
  detailGain?: number;
}

/** The target image of a pair: what the pixel loss pulls the fused image towards (for 'reference', M·max + (1 − M)·mean). */
export function targetImage(target: Target, s: TargetSources, opts: TargetOptions = {}): Float32Array {
  if (target === 'multiscale') return multiscaleFusion(s.ir, s.vis, s.width, s.height, { detailGain: opts.detailGain });
  const max = maxFusion(s.ir, s.vis);
  if (target === 'max') return max;
  const m = s.foreground;
  return max.map((v, i) => (m ? m[i] : 0) * v + (1 - (m ? m[i] : 0)) * 0.5 * (s.ir[i] + s.vis[i]));
}
