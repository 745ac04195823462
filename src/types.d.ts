declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /** Tagged template that evaluates #if/#elif/#else/#endif on interpolated values. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
