/**
 * safetensors files (https://github.com/huggingface/safetensors): 8-byte little-endian header length N, N bytes of
 * JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`, then the raw
 * little-endian tensor bytes (offsets relative to the end of the header). Reading converts every float dtype to
 * float32; writing stores F32 or F16. This file works on bytes, on every platform; safetensors-file.ts reads and
 * writes files in Node.
 */

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16';

export interface StoredTensor {
  /** dtype as stored in the file; `data` is always float32. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

const ITEM_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2 };
/** Headers larger than this are refused as corrupt (the reference implementation uses the same bound). */
const MAX_HEADER_BYTES = 100_000_000;

const numel = (shape: number[]) => shape.reduce((a, d) => a * d, 1);
/** On little-endian hosts F32 bytes are copied as they are, without per-element conversion. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(json: Uint8Array, file: string, dataBytes: number): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(json));
  } catch (e) {
    throw new SafetensorsError(file, `bad header: not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new SafetensorsError(file, 'bad header: expected a JSON object');

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new SafetensorsError(file, 'bad header: __metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `bad header: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null) throw new SafetensorsError(file, `bad header: entry ${name} is not an object`);
    if (typeof t.dtype !== 'string') throw new SafetensorsError(file, `bad header: tensor ${name} has no dtype`);
    if (!(t.dtype in ITEM_BYTES))
      throw new SafetensorsError(file, `tensor ${name} has unsupported dtype ${t.dtype} (supported: ${Object.keys(ITEM_BYTES).join(', ')})`);
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(file, `bad header: tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    const offsets = t.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0))
      throw new SafetensorsError(file, `bad header: tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const dtype = t.dtype as SafetensorsDtype;
    if (end < begin || end > dataBytes)
      throw new SafetensorsError(
        file,
        `tensor ${name}: data_offsets [${begin}, ${end}] out of range, the data section has ${dataBytes} bytes (truncated file?)`,
      );
    const expected = numel(shape) * ITEM_BYTES[dtype];
    if (end - begin !== expected)
      throw new SafetensorsError(file, `tensor ${name}: ${end - begin} bytes for ${dtype} [${shape}] (expected ${expected})`);
    entries.push({ name, dtype, shape: [...shape], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].begin < sorted[i - 1].end)
      throw new SafetensorsError(file, `tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap`);
  return { entries, metadata };
}

/** IEEE half → float (exact). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

let halves: Float32Array | null = null;

/** Every IEEE half as float32 (256 KiB, built on first use): decoding the shipped weights went from 1 s to 20 ms. */
function halfTable(): Float32Array {
  if (!halves) {
    halves = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halves[h] = halfToFloat(h);
  }
  return halves;
}

/** float → IEEE half, round to nearest even; overflow gives ±Infinity, NaN stays NaN. */
function floatToHalf(value: number, bits: Uint32Array, f: Float32Array): number {
  f[0] = value;
  const x = bits[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000; // implicit leading one
    const shift = 14 - e;
    let half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry into the exponent is still correct
  return sign | half;
}

function decode(bytes: Uint8Array, dtype: SafetensorsDtype, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(bytes);
      else for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16': {
      const table = halfTable();
      if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 2 === 0) {
        const halfs = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
        for (let i = 0; i < count; i++) out[i] = table[halfs[i]];
      } else for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/** Parses a whole safetensors file's bytes: every tensor as float32, with the metadata. `file` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const size = bytes.byteLength;
  if (size < 8) throw new SafetensorsError(file, `truncated file: ${size} bytes, not even the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getBigUint64(0, true);
  if (headerBytes > BigInt(MAX_HEADER_BYTES) || 8n + headerBytes > BigInt(size))
    throw new SafetensorsError(file, `truncated file or bad header: header length ${headerBytes} but the file has ${size} bytes`);
  const dataStart = 8 + Number(headerBytes);
  const { entries, metadata } = parseHeader(bytes.subarray(8, dataStart), file, size - dataStart);
  const tensors = new Map<string, StoredTensor>();
  for (const t of entries)
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: decode(bytes.subarray(dataStart + t.begin, dataStart + t.end), t.dtype, numel(t.shape)) });
  return { tensors, metadata };
}

function encode(data: Float32Array, dtype: 'F32' | 'F16'): Uint8Array {
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const out = new Uint8Array(data.length * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
    return out;
  }
  const out = new Uint8Array(data.length * 2);
  const view = new DataView(out.buffer);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < data.length; i++) view.setUint16(2 * i, floatToHalf(data[i], bits, f), true);
  return out;
}

/**
 * The bytes of a safetensors file, in parts to write one after another: tensors (float32 data) stored as F32
 * (default) or F16, in the given key order, with string metadata. `file` names the target in errors.
 */
export function encodeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite>,
  opts: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string> } = {},
): Uint8Array[] {
  const dtype = opts.dtype ?? 'F32';
  const header: Record<string, unknown> = {};
  if (opts.metadata && Object.keys(opts.metadata).length) header.__metadata__ = opts.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new SafetensorsError(file, 'a tensor cannot be named __metadata__');
    if (numel(t.shape) !== t.data.length)
      throw new SafetensorsError(file, `tensor ${name}: shape [${t.shape}] needs ${numel(t.shape)} values, got ${t.data.length}`);
    const bytes = encode(t.data, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  // The header is padded with spaces to a multiple of 8 bytes so the data section starts aligned.
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  json = padded;
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(json.length), true);
  return [length, json, ...chunks];
}
