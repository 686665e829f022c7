/**
 * Tolerances tied to measurement. The fixture script runs the official SparK code twice, in
 * float64 (the stored reference) and in float32, and records per tensor `torch_fp32_error`:
 * [max |float32 - float64|, max |float64|]. A float32 implementation can be expected to land
 * at that distance; webspark's values must be within MULTIPLE times it. The floor, one float32
 * ulp of the tensor's largest value, covers tensors PyTorch happens to get exact (a smaller
 * difference cannot be represented at that magnitude).
 *
 * Set WEBSPARK_FIXTURE_RATIOS=1 to print, per tensor kind, the largest ratio seen of
 * webspark's error to PyTorch's (docs/architecture.md quotes them).
 */
import { afterAll, expect } from 'vitest';
import { expectClose } from '../helpers/check.ts';

export const MULTIPLE = 10;
const F32_ULP = 2 ** -23;

export type ErrorTable = Record<string, [number, number]>;

/** The measured float32 error of `key` (never below one ulp of its largest value). */
export function measuredError(table: ErrorTable, key: string): number {
  const e = table[key];
  if (!e) throw new Error(`the manifest has no torch_fp32_error for ${key}`);
  return Math.max(e[0], F32_ULP * e[1]);
}

const worst = new Map<string, { ratio: number; key: string }>();

function note(kindOf: string, ratio: number, what: string): void {
  const prev = worst.get(kindOf);
  if (!prev || prev.ratio < ratio) worst.set(kindOf, { ratio, key: what });
}

/** The kind of a tensor key for the ratio report: `train/grad/x.weight` -> `train/grad`. */
function kind(key: string): string {
  const parts = key.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** |actual - expected| <= MULTIPLE x measuredError(table, key), element by element. */
export function expectMeasured(actual: ArrayLike<number>, expected: ArrayLike<number>, table: ErrorTable, key: string, what = key): void {
  const unit = measuredError(table, key);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
  note(kind(key), diff / unit, what);
  expectClose(actual, expected, { atol: MULTIPLE * unit, rtol: 0 }, `${what} (${MULTIPLE} x measured float32 error ${unit.toExponential(2)})`);
}

/** A scalar against its float64 value, within MULTIPLE x |torch float32 - float64| (ulp floor). */
export function expectScalarMeasured(actual: number, expected: number, torchF32: number, what: string): void {
  const unit = Math.max(Math.abs(torchF32 - expected), F32_ULP * Math.abs(expected));
  note(`scalar ${what.split(' ')[0]}`, Math.abs(actual - expected) / unit, what);
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected} (${MULTIPLE} x measured ${unit.toExponential(2)})`).toBeLessThanOrEqual(MULTIPLE * unit);
}

afterAll(() => {
  if (!process.env.WEBSPARK_FIXTURE_RATIOS) return;
  for (const [k, v] of [...worst].sort()) console.log(`measured-error ratio ${k}: ${v.ratio.toFixed(2)} (${v.key})`);
});
