/**
 * What f16 tests share: inputs rounded to f16 first (so the float64 reference sees exactly
 * what the kernel reads), tolerances derived from f16 storage, and the skip on an adapter
 * without `shader-f16`.
 *
 * The f16 error model. A kernel loads f16 values exactly into f32, computes in f32 (error
 * bounded by the kernel's f32 tolerance, the one its f32 test states) and rounds the result to
 * f16 once when it stores it. WGSL lets that conversion pick either neighbour of a value it
 * cannot represent, so a stored value is off by at most one f16 ulp: 2^-10 relative for a
 * normal value, 2^-24 absolute (the subnormal spacing) below 2^-14. Each f16 intermediate a
 * computation stores (a gradient summed from two f16 terms, a pass writing f16 for the next
 * one) adds another such rounding.
 */
import type { TestContext } from 'vitest';
import { roundToHalf } from '../../src/util/half.ts';
import type { Context } from '../../src/tensor/context.ts';
import { supportsF16 } from '../../src/tensor/precision.ts';
import type { Tolerance } from './check.ts';

/** One f16 rounding, relative: WGSL may round to either neighbour, so up to one ulp. */
export const F16_ULP = 2 ** -10;
/** One f16 rounding, absolute, in the subnormal range. */
export const F16_SUBNORMAL = 2 ** -24;

/**
 * The tolerance of a result computed within `f32` and then stored as f16 `roundings` times
 * (each rounding scales what came before by at most 1 + 2^-10 and adds its own 2^-10).
 */
export function storedAsF16(f32: Tolerance, roundings = 1): Tolerance {
  const grow = (1 + F16_ULP) ** roundings;
  return { atol: f32.atol * grow + roundings * F16_SUBNORMAL, rtol: f32.rtol * grow + (grow - 1) };
}

/** `values` rounded to f16, as f32: what an f16 tensor made from them holds. */
export function asF16(values: ArrayLike<number>): Float32Array {
  return Float32Array.from(values, roundToHalf);
}

/** Skips the running test, with the reason shown, when the adapter has no `shader-f16`. */
export function needF16(t: TestContext, ctx: Context): void {
  if (!supportsF16(ctx.gpu)) t.skip(`the adapter (${ctx.gpu.adapter.description || ctx.gpu.adapter.vendor}) has no shader-f16`);
}
