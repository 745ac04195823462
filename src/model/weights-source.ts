/**
 * Where weights come from: a file path (Node), a URL (file:, http:, https:), or the bytes of a safetensors file.
 * Shared by the Fuser and the ONNX export; every failure names the source.
 */
import { parseSafetensors, type SafetensorsFile } from '../io/safetensors.ts';
import { InputError } from '../io/pixels.ts';
import { isNode } from '../io/codec.ts';

/** Weights: a file path (Node), a URL (file:, http:, https:), or the bytes of a safetensors file. */
export type WeightsSource = string | URL | Uint8Array | ArrayBuffer;

/** Reads and parses a weights file; `source` is how errors and the caller name it. */
export async function readWeights(src: WeightsSource): Promise<{ file: SafetensorsFile; source: string }> {
  if (src instanceof Uint8Array) return { file: parseSafetensors(src, 'weights (bytes)'), source: 'weights (bytes)' };
  if (src instanceof ArrayBuffer) return { file: parseSafetensors(new Uint8Array(src), 'weights (bytes)'), source: 'weights (bytes)' };
  const url = src instanceof URL ? src : !isNode || /^https?:\/\//.test(src) ? new URL(src, globalThis.location?.href) : null;
  if (url && url.protocol !== 'file:') {
    const source = url.href;
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new InputError(`${source}: cannot fetch the weights (${(e as Error).message})`);
    }
    if (!res.ok) throw new InputError(`${source}: cannot fetch the weights (HTTP ${res.status} ${res.statusText})`);
    return { file: parseSafetensors(new Uint8Array(await res.arrayBuffer()), source), source };
  }
  if (!isNode) throw new InputError(`${String(src)}: file URLs cannot be read in a browser; serve the weights over http(s)`);
  const path = url ? decodeURIComponent(url.pathname) : (src as string);
  const { readSafetensors } = await import('../io/safetensors-file.ts');
  return { file: readSafetensors(path), source: path };
}
