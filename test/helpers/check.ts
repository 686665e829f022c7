/**
 * Closeness checks with a message that says where and by how much they failed.
 * An element passes when |actual - expected| <= atol + rtol * |expected|.
 */
import { expect } from 'vitest';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export function maxViolation(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance) {
  let worst = { index: -1, actual: 0, expected: 0, excess: -Infinity };
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const excess = Number.isFinite(a) ? Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e)) : Infinity;
    if (excess > worst.excess) worst = { index: i, actual: a, expected: e, excess };
  }
  return worst;
}

export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  what = 'values',
): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const worst = maxViolation(actual, expected, tol);
  if (worst.excess > 0) {
    expect.fail(
      `${what}: element ${worst.index} is ${worst.actual}, expected ${worst.expected} ` +
        `(|diff| ${Math.abs(worst.actual - worst.expected).toExponential(3)} > atol ${tol.atol} + rtol ${tol.rtol}*|expected|)`,
    );
  }
}
