/**
 * Float64 reference for linear (PyTorch nn.Linear): x [N, Cin] rows, w [Cout, Cin], bias [Cout].
 *   y[n, o] = bias[o] + sum_i x[n, i] * w[o, i]
 */

export function linearForward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  N: number,
  Cin: number,
  Cout: number,
): Float64Array {
  const y = new Float64Array(N * Cout);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < Cout; o++) {
      let acc = bias ? bias[o]! : 0;
      for (let i = 0; i < Cin; i++) acc += x[n * Cin + i]! * w[o * Cin + i]!;
      y[n * Cout + o] = acc;
    }
  }
  return y;
}

/** Gradients of L = sum(gy * y): dx = gy @ w, dw = gy^T @ x, db = column sums of gy. */
export function linearBackward(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
  N: number,
  Cin: number,
  Cout: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(N * Cin);
  const dw = new Float64Array(Cout * Cin);
  const db = new Float64Array(Cout);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < Cout; o++) {
      const g = gy[n * Cout + o]!;
      db[o]! += g;
      for (let i = 0; i < Cin; i++) {
        dx[n * Cin + i]! += g * w[o * Cin + i]!;
        dw[o * Cin + i]! += g * x[n * Cin + i]!;
      }
    }
  }
  return { dx, dw, db };
}
