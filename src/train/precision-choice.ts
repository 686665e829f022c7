/**
 * Which precision a run uses: the one asked for (`--precision`, the app's set-up form), or by
 * default f16 where the device can run a whole f16 step (it has `shader-f16` and this build's
 * kernels all store f16), f32 otherwise. Shared by the CLI commands and the app's worker.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { Context } from '../tensor/context.ts';
import { checkPrecision, PRECISIONS, supportsF16, type Precision } from '../tensor/precision.ts';

export interface PrecisionChoice {
  precision: Precision;
  /** Why, for the run's first lines ('asked', or the default's reason). */
  reason: string;
}

/** A precision's name as given (before any device work), or undefined when none was given. */
export function parsePrecision(asked: string | undefined): Precision | undefined {
  if (asked === undefined) return undefined;
  if (!PRECISIONS.includes(asked as Precision)) throw new Error(`--precision must be ${PRECISIONS.join(' or ')}, got '${asked}'`);
  return asked as Precision;
}

/** Throws for an unknown name or an f16 the device cannot run, with the way out. */
export function choosePrecision(gpu: Gpu, asked?: string): PrecisionChoice {
  const given = parsePrecision(asked);
  if (given !== undefined) {
    checkPrecision(gpu, given);
    return { precision: given, reason: 'asked' };
  }
  if (!supportsF16(gpu)) return { precision: 'f32', reason: "default: the adapter has no 'shader-f16'" };
  try {
    checkPrecision(gpu, 'f16');
    return { precision: 'f16', reason: "default: the adapter has 'shader-f16'" };
  } catch (err) {
    return { precision: 'f32', reason: `default: ${err instanceof Error ? err.message.split(';')[0] : String(err)}` };
  }
}

/** The run's line about it: `precision f16 (default: the adapter has 'shader-f16'; dynamic loss scaling)`. */
export function precisionLine(c: PrecisionChoice, lossScaling = c.precision === 'f16'): string {
  const scaling = lossScaling ? '; dynamic loss scaling' : c.precision === 'f16' ? '; no loss scaling' : '';
  return `precision ${c.precision} (${c.reason}${scaling})`;
}

/**
 * A Context on `gpu` in the chosen precision. If the choice fails (an f16 the device cannot
 * run), the device is released before the error goes up: the caller has nothing to clean.
 */
export function contextFor(gpu: Gpu, asked?: string): { ctx: Context; choice: PrecisionChoice } {
  try {
    const choice = choosePrecision(gpu, asked);
    return { ctx: new Context(gpu, { precision: choice.precision }), choice };
  } catch (err) {
    gpu.destroy();
    throw err;
  }
}

/**
 * For the app's set-up, decided once: the precision a run asking for `asked` gets here (f32
 * where the ask cannot be met: its memory is estimated so) and the line the set-up shows (the
 * choice, or why the one asked for cannot run here).
 */
export function plannedPrecision(gpu: Gpu, asked?: string): { precision: Precision; line: string } {
  try {
    const choice = choosePrecision(gpu, asked);
    return { precision: choice.precision, line: precisionLine(choice) };
  } catch (err) {
    return { precision: 'f32', line: err instanceof Error ? err.message : String(err) };
  }
}

/** The line the app's set-up shows: the choice, or why the one asked for cannot run here. */
export function describePrecision(gpu: Gpu, asked?: string): string {
  return plannedPrecision(gpu, asked).line;
}
