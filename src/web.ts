/// <reference types="@webgpu/types" preserve="true" />
/**
 * moefusion in a browser (`moefusion/web`, bundled by scripts/build-web.ts into dist/web/moefusion.js): the fusion
 * runtime on the page's WebGPU, and helpers that turn what a page has (File, Blob, ImageBitmap, <img>, <canvas>,
 * ImageData) into inputs. Nothing here loads Node code: the Node paths of the modules below are dynamic imports
 * that a browser never takes.
 *
 *   const fuser = await Fuser.create({ weights: '/weights/moefusion.safetensors' });
 *   const fused = await fuser.fuse(await imageFrom(irFile), await imageFrom(visFile), { color: true });
 *   ctx.putImageData(new ImageData(fused.toImageData().data, fused.width, fused.height), 0, 0);
 */
import { engine, hasEngine } from './tensor/engine.ts';
import { adapterName, type AdapterSummary } from './runtime/device.ts';

export { Fuser, fuseClassic, type ClassicFuseOptions, type FuserOptions, type FuseOptions, type ImageSource, type WeightsSource } from './model/fuser.ts';
export { OUTPUT_RANGES, type OutputRange } from './io/output-range.ts';
export { FusedImage } from './io/fused-image.ts';
export { InputError, type GrayImage, type ImageDataLike, type PixelInput } from './io/pixels.ts';
export { ImageError, type Image } from './io/image-types.ts';
export { imageFrom, targetSize, type BrowserImageSource, type ImageFromOptions } from './io/image-web.ts';
export { GpuError, NoAdapterError, LimitError, DeviceLostError } from './runtime/errors.ts';
export { BROWSER_ADVICE, type AdapterSummary } from './runtime/device.ts';
export { initEngine, shutdownEngine } from './tensor/engine.ts';

/** Whether this browser exposes WebGPU at all (an adapter may still be refused: Fuser.create says why). */
export function hasWebGPU(): boolean {
  return typeof navigator !== 'undefined' && !!(navigator as { gpu?: GPU }).gpu;
}

/** The adapter the engine runs on (after Fuser.create or initEngine), with a display name; null before. */
export function adapterInfo(): (AdapterSummary & { name: string; subgroupMinSize?: number; subgroupMaxSize?: number }) | null {
  if (!hasEngine()) return null;
  const { summary, device } = engine().rt.handle;
  const sizes = (device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  return { ...summary, name: adapterName(summary), subgroupMinSize: sizes?.subgroupMinSize, subgroupMaxSize: sizes?.subgroupMaxSize };
}
