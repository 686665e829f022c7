/**
 * Gpu.timeOnGpu (bench/harness.ts's GPU timestamps): a finite, non-negative time where the
 * device has 'timestamp-query' (SwiftShader through Dawn does), null where it does not; the
 * timed commands run as usual, and commands recorded afterwards too.
 */
import { describe, expect, it } from 'vitest';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';

describe('Gpu.timeOnGpu', () => {
  const getCtx = useContext();

  it('times the recorded work, which still runs, and work after it', async () => {
    const ctx = getCtx();
    const a = ctx.fromArray([1, 2, 3, 4, 5], [5]);
    let sum: Tensor | null = null;
    const ms = await ctx.gpu.timeOnGpu(() => {
      sum = ew.add(a, a);
      sum = ew.add(sum, a);
    });
    if (ctx.gpu.features.has('timestamp-query')) {
      expect(ms).not.toBeNull();
      expect(Number.isFinite(ms!) && ms! >= 0).toBe(true);
    } else {
      expect(ms).toBeNull();
    }
    expect(Array.from(await sum!.read())).toEqual([3, 6, 9, 12, 15]);
    const after = ew.add(sum!, a);
    expect(Array.from(await after.read())).toEqual([4, 8, 12, 16, 20]);
    ctx.dispose();
  });

  it('reads timestamps at full resolution: Node turns off Dawn\'s 65.536 us quantization', async () => {
    const ctx = getCtx();
    if (!ctx.gpu.features.has('timestamp-query')) return;
    const a = ctx.fromArray([1, 2, 3, 4, 5], [5]);
    const ns: number[] = [];
    for (let i = 0; i < 4; i++) ns.push(Math.round((await ctx.gpu.timeOnGpu(() => void ew.add(a, a)))! * 1e6));
    // Quantized, every difference would be a multiple of 65536 ns.
    expect(ns.some((t) => t % 65536 !== 0), `times in ns: ${ns.join(', ')}`).toBe(true);
    ctx.dispose();
  });
});
