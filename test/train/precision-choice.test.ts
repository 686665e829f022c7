/**
 * The precision a run uses (src/train/precision-choice.ts): asked for, or by default f16 where
 * the device can run a whole f16 step, f32 otherwise, with the reason; refused by name. On
 * stand-in devices that have or lack `shader-f16` (no GPU work is involved).
 */
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { choosePrecision, describePrecision, parsePrecision, plannedPrecision, precisionLine } from '../../src/train/precision-choice.ts';
import { checkPrecision } from '../../src/tensor/precision.ts';

const device = (features: string[]) =>
  ({ features: new Set(features), adapter: { vendor: 'test', architecture: '', device: '', description: 'stand-in' } }) as unknown as Gpu;

describe('precision choice', () => {
  it('without shader-f16: f32 by default, saying why; f16 asked for is refused with the way out', () => {
    const gpu = device([]);
    expect(choosePrecision(gpu)).toEqual({ precision: 'f32', reason: "default: the adapter has no 'shader-f16'" });
    expect(precisionLine(choosePrecision(gpu))).toBe("precision f32 (default: the adapter has no 'shader-f16')");
    expect(() => choosePrecision(gpu, 'f16')).toThrow(/'shader-f16'.*test stand-in.*--precision f32/);
    expect(describePrecision(gpu, 'f16')).toMatch(/^precision f16 needs the WebGPU feature 'shader-f16'/);
    // The app's set-up plans such a run's memory as f32 and shows why f16 would be refused.
    const planned = plannedPrecision(gpu, 'f16');
    expect(planned.precision).toBe('f32');
    expect(planned.line).toBe(describePrecision(gpu, 'f16'));
    expect(plannedPrecision(gpu)).toEqual({ precision: 'f32', line: "precision f32 (default: the adapter has no 'shader-f16')" });
    expect(choosePrecision(gpu, 'f32')).toEqual({ precision: 'f32', reason: 'asked' });
  });

  it('with shader-f16: f16 by default exactly when the device can run an f16 step', () => {
    const gpu = device(['shader-f16']);
    let runs = true;
    try {
      checkPrecision(gpu, 'f16');
    } catch {
      runs = false;
    }
    const c = choosePrecision(gpu);
    expect(c.precision).toBe(runs ? 'f16' : 'f32');
    expect(c.reason).toMatch(runs ? /^default: the adapter has 'shader-f16'$/ : /^default: precision f16 is not yet available/);
    if (runs) expect(precisionLine(c)).toMatch(/dynamic loss scaling\)$/);
  });

  it('refuses an unknown name before any device work', () => {
    expect(() => parsePrecision('bf16')).toThrow(/^--precision must be f32 or f16, got 'bf16'$/);
    expect(parsePrecision(undefined)).toBeUndefined();
    expect(parsePrecision('f16')).toBe('f16');
  });
});
