/**
 * Central finite differences in float64, used to check the references' own gradients.
 * With eps 1e-6 on smooth float64 functions the error is ~1e-9 relative.
 */
import { expectClose, type Tolerance } from './check.ts';

/** d f / d x by central differences, for every element of x. */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const probe = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const keep = probe[i]!;
    probe[i] = keep + eps;
    const up = f(probe);
    probe[i] = keep - eps;
    const down = f(probe);
    probe[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

/** Weights for a scalar objective L = sum(w * y), so every output element matters differently. */
export function projection(n: number, seed = 7): Float64Array {
  const w = new Float64Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    w[i] = (s / 2147483648) * 2 - 1;
  }
  return w;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Checks an analytic gradient of f at x against finite differences. */
export function expectGradientMatches(
  f: (x: Float64Array) => number,
  x: Float64Array,
  analytic: ArrayLike<number>,
  what: string,
  tol: Tolerance = { atol: 1e-6, rtol: 1e-5 },
): void {
  expectClose(analytic, numericGrad(f, x), tol, `${what} (analytic vs finite differences)`);
}
