/** Packs a kernel's uniform parameters (u32, i32, f32 fields, 4 bytes each, in declaration order). */
export class Params {
  private view = new DataView(new ArrayBuffer(256));
  private n = 0;

  u32(...values: number[]): this {
    for (const v of values) this.view.setUint32(4 * this.n++, v >>> 0, true);
    return this;
  }
  i32(...values: number[]): this {
    for (const v of values) this.view.setInt32(4 * this.n++, v, true);
    return this;
  }
  f32(...values: number[]): this {
    for (const v of values) this.view.setFloat32(4 * this.n++, v, true);
    return this;
  }
  /** The packed bytes, padded to 16 bytes as WGSL uniform structs require. */
  get bytes(): Uint8Array {
    return new Uint8Array(this.view.buffer, 0, Math.max(16, Math.ceil((4 * this.n) / 16) * 16));
  }
}
