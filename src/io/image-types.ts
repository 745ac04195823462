/** Decoded images as the io layer passes them around, on every platform. */
export type ImageChannels = 1 | 3 | 4;

export interface Image {
  width: number;
  height: number;
  channels: ImageChannels;
  bitDepth: 8 | 16;
  /** Interleaved pixels, row-major, channel last. */
  data: Uint8Array | Uint16Array;
}

export class ImageError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ImageError';
  }
}

/** An image too large to decode (its header says so); the CLI reports it as too large, as it does for the GPU (exit 3). */
export class ImageTooLargeError extends ImageError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'ImageTooLargeError';
  }
}
