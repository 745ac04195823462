/** Which algorithm runs a 3×3 convolution: the direct kernel (0) or Winograd F(m×m, 3×3) (m = 4, 6). */

export interface ConvShape {
  /** Output samples, input and output channels, height, width. */
  n: number;
  ci: number;
  co: number;
  h: number;
  w: number;
  /** The input gradient (a convolution of the output gradient with flipped weights). */
  grad: boolean;
}

export type ConvChoice = 'auto' | 'direct' | 'winograd4' | 'winograd6';

const CHOICES: readonly ConvChoice[] = ['auto', 'direct', 'winograd4', 'winograd6'];

/** MOEFUSION_CONV=direct|winograd4|winograd6 forces one algorithm in a whole process (Node; A/B runs of the benchmarks). */
function fromEnvironment(): ConvChoice {
  const v = typeof process === 'undefined' ? undefined : process.env?.MOEFUSION_CONV;
  if (v === undefined || v === '') return 'auto';
  if (!CHOICES.includes(v as ConvChoice)) throw new Error(`MOEFUSION_CONV=${v}: expected one of ${CHOICES.join(', ')}`);
  return v as ConvChoice;
}

let forced: ConvChoice = fromEnvironment();

/** Forces one algorithm wherever it applies (tests of each path, A/B timing); 'auto' restores the choice by shape. */
export function setConvAlgorithm(choice: ConvChoice): void {
  forced = choice;
}

export function convAlgorithm(s: ConvShape): number {
  if (forced === 'direct') return 0;
  if (forced === 'winograd4') return 4;
  if (forced === 'winograd6') return 6;
  return 0;
}
