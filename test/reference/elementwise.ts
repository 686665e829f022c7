/** Float64 references for the elementwise ops: value and derivative, element by element. */

/** erf to ~1e-15 (series for small |x|, continued fraction otherwise). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), accurate for |x| >= 2.5
  let f = ax;
  const tiny = 1e-300;
  let c = f;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const relu = (x: number) => Math.max(x, 0);
export const reluGrad = (x: number) => (x > 0 ? 1 : 0);
export const relu6 = (x: number) => Math.min(Math.max(x, 0), 6);
export const relu6Grad = (x: number) => (x > 0 && x < 6 ? 1 : 0);
export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluGrad = (x: number) =>
  0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);

export function map(x: ArrayLike<number>, f: (v: number) => number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]!);
  return out;
}
