/// <reference types="@webgpu/types" preserve="true" />
// (Kept in dist/index.d.ts: its types name GPUDevice, GPUBuffer…, which a consumer gets from @webgpu/types.)
/**
 * moefusion as a library: the fusion runtime (Fuser), training, image I/O and colour handling, the metrics, and the engine
 * underneath (tensors, ops, autograd, optimizer) for those who build their own models on it.
 */
export {
  Fuser,
  SHIPPED_WEIGHTS,
  fuseClassic,
  type ClassicFuseOptions,
  type FuserOptions,
  type FuseOptions,
  type DetectOptions,
  type DetectResult,
  type ImageSource,
  type WeightsSource,
} from './model/fuser.ts';
export { FusedImage } from './io/fused-image.ts';
export { applyRange, OUTPUT_RANGES, type OutputRange } from './io/output-range.ts';
export { maxFusion, multiscaleFusion, CLASSIC_METHODS, type ClassicMethod } from './model/classic-fusion.ts';
export { InputError, type GrayImage, type ImageDataLike, type RawPixels, type PixelInput } from './io/pixels.ts';
export { Detector, fusionAttention, type DetectorOutput } from './model/detector/network.ts';
export { DEFAULT_DETECTOR_CONFIG, M3FD_CLASSES, type DetectorConfig } from './model/detector/config.ts';
export { buildTargets } from './model/detector/targets.ts';
export { detectorLoss, detectionLosses } from './model/detector/losses.ts';
export { decodeDetections, type Detection } from './model/detector/decode.ts';
export { evaluateDetections, formatDetectionTable } from './metrics/detection-map.ts';
export { syntheticScene, writeSyntheticDataset, SYNTHETIC_CLASSES } from './train/synthetic-scenes.ts';
export { FusionNet, type ForwardOptions, type ForwardResult } from './model/fusion-net.ts';
export { DEFAULT_CONFIG, type FusionConfig } from './model/config.ts';
export { loadWeights, loadWeightsWithConfig, saveWeights } from './model/weights-file.ts';
export { weightsFromBytes } from './model/weights.ts';
export { WeightsError } from './model/state-dict.ts';
export { exportOnnx, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, type OnnxExportOptions } from './model/onnx-export.ts';
export { infraredSaliency } from './model/saliency.ts';
export { ConfigError } from './model/config.ts';
export { fusionLosses, gradientLoss, pixelLoss } from './model/losses.ts';
export { Trainer, type StepResult } from './train/trainer.ts';
export { referenceOptions, TRAIN_OPTIONS, type AttentionMode, type Target, type TrainOptions } from './train/options.ts';
export { PairSource, Batcher, type SampleSource, type TrainingSample } from './train/data.ts';
export { readCheckpoint, saveCheckpoint, restoreCheckpoint, type Checkpoint } from './train/checkpoint.ts';
export { Validator, type ValidationScores } from './train/validation.ts';
export { runTraining, type RunSettings } from './train/run.ts';
export { readImage, writeImage, decodeImage, encodeImage, type Image } from './io/image.ts';
export { toGray01, recolor, to8bit, to16bit } from './io/color.ts';
export { evaluate } from './metrics/evaluate.ts';
export { getProtocol, PROTOCOL_NAMES, METRIC_NAMES } from './metrics/protocols.ts';
export { initEngine, shutdownEngine, engine, tidy, keep, noGrad } from './tensor/engine.ts';
export { Tensor, parameter } from './tensor/tensor.ts';
export { backward } from './autograd/tape.ts';
export { Adam, clipGradNorm } from './optim/optimizer.ts';
export * as ops from './ops/index.ts';
