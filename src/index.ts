/**
 * moefusion as a library: the fusion runtime (Fuser), image I/O and colour handling, the metrics, and the engine
 * underneath (tensors, ops, autograd, optimizer) for those who build their own models on it.
 */
export { Fuser, type FuserOptions, type FuseOptions, type GrayImage } from './model/fuser.ts';
export { FusionNet, type ForwardOptions, type ForwardResult } from './model/fusion-net.ts';
export { DEFAULT_CONFIG, type FusionConfig } from './model/config.ts';
export { initParameters, type ParamSet } from './model/parameters.ts';
export { loadWeights, loadWeightsWithConfig, saveWeights } from './model/weights.ts';
export { fusionLosses } from './model/losses.ts';
export { Trainer, referenceOptions, type TrainOptions, type SampleSource, type TrainingSample } from './model/trainer.ts';
export { readImage, writeImage, type Image } from './io/image.ts';
export { toGray01, recolor, to8bit } from './io/color.ts';
export { evaluate } from './metrics/evaluate.ts';
export { getProtocol, PROTOCOL_NAMES, METRIC_NAMES } from './metrics/protocols.ts';
export { initEngine, shutdownEngine, engine, tidy, keep, noGrad } from './graph/engine.ts';
export { Tensor, parameter } from './graph/tensor.ts';
export { backward } from './graph/autograd.ts';
export { Adam, clipGradNorm } from './graph/optimizer.ts';
export * as ops from './graph/ops.ts';
