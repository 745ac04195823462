/**
 * What the detection decode tests share (test/kernels/detection-peaks.test.ts, nms.test.ts and
 * test/detection-decode.test.ts): head levels on the host, their upload, the decode, and comparisons.
 */
import * as assert from 'uvu/assert';
import { assertClose } from './compare.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { decodeDetectionsWithStats, type DecodeOptions, type Detection, type HeadLevel } from '../../src/model/detector/decode.ts';
import type { RefHeadLevel } from '../../src/check/reference/detection-peaks.ts';

/** A head level on the host (editable). */
export interface HostLevel extends RefHeadLevel {
  heat: Float32Array;
  size: Float32Array;
  offset: Float32Array;
}

export function upload(levels: HostLevel[]): HeadLevel[] {
  return levels.map((l) => {
    const [B, , h, w] = l.shape;
    return {
      heat: Tensor.fromArray(l.heat, l.shape),
      size: Tensor.fromArray(l.size, [B, 2, h, w]),
      offset: Tensor.fromArray(l.offset, [B, 2, h, w]),
      stride: l.stride,
    };
  });
}

export function release(levels: HeadLevel[]): void {
  for (const l of levels) for (const x of [l.heat, l.size, l.offset]) x.dispose();
}

/** The whole GPU decode (peaks, then NMS) of host levels, with the candidate counts. */
export async function decodeHost(levels: HostLevel[], o: DecodeOptions) {
  const dev = upload(levels);
  try {
    return await decodeDetectionsWithStats(dev, o);
  } finally {
    release(dev);
  }
}

export function assertSame(got: Detection[][], want: Detection[][], what: string): void {
  assert.is(got.length, want.length, `${what}: images`);
  got.forEach((g, b) => {
    assert.is(g.length, want[b].length, `${what}: image ${b} detection count`);
    assert.equal(
      g.map((d) => [d.classIndex, d.label]),
      want[b].map((d) => [d.classIndex, d.label]),
      `${what}: image ${b} classes`,
    );
    const flat = (ds: Detection[]) => ds.flatMap((d) => [d.x0, d.y0, d.x1, d.y1, d.score]);
    assertClose(flat(g), flat(want[b]), { rtol: 1e-4, atol: 1e-4, what: `${what}: image ${b} boxes and scores` });
  });
}

/** A level filled with `fill` logits, zero offsets and the given log-size, to be edited by the constructed cases. */
export function blank(B: number, C: number, h: number, w: number, stride: number, fill: number, logSize: number): HostLevel {
  return {
    shape: [B, C, h, w],
    stride,
    heat: new Float32Array(B * C * h * w).fill(fill),
    size: new Float32Array(B * 2 * h * w).fill(logSize),
    offset: new Float32Array(B * 2 * h * w).fill(0.5),
  };
}

export const setHeat = (l: HostLevel, b: number, c: number, y: number, x: number, v: number) => {
  const [, C, h, w] = l.shape;
  l.heat[((b * C + c) * h + y) * w + x] = v;
};

export const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
