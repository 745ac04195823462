/** Float64 reference of the matmul kernel (src/kernels/matmul.ts): C = A·B and transposes. */

/** C = A·B for row-major A (M×K) and B (K×N). */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let k = 0; k < K; k++) {
      const av = a[i * K + k];
      for (let j = 0; j < N; j++) c[i * N + j] += av * b[k * N + j];
    }
  return c;
}

export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** B products A_i·B_i of row-major A (B×M×K) and B (B×K×N), or A_i·B against one B (K×N) when `shared`. */
export function batchedMatmul(a: Float32Array, b: Float32Array, B: number, M: number, K: number, N: number, shared: boolean): Float64Array {
  const c = new Float64Array(B * M * N);
  for (let i = 0; i < B; i++) c.set(matmul(a.subarray(i * M * K), b.subarray(shared ? 0 : i * K * N), M, K, N), i * M * N);
  return c;
}
