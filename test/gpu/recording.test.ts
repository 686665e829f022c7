/**
 * Recorded command sequences (src/gpu/recording.ts): a replay re-encodes the same work with
 * its step-dependent writes refilled, owns the buffers it uses (nothing outside can be handed
 * one of them between replays), refuses a readback while recording, and refuses a refill that
 * changes size (the step must be recorded again).
 */
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';

describe('recorded command sequences', () => {
  it('replays with refilled inputs, constants kept, and owns its buffers', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    try {
      const out = ctx.persistent([4]);
      let x = Float32Array.of(1, 2, 3, 4);
      gpu.beginRecording();
      ctx.tidy(() => {
        const input = ctx.fromArray(x, [4], null, () => x);
        const constant = ctx.fromArray([10, 20, 30, 40], [4]);
        const y = ew.add(ew.scale(input, 2), constant);
        gpu.copy(y.buffer, out.buffer, 16);
      });
      let counted = 0;
      gpu.onReplay(() => void counted++);
      await expect(gpu.read(out.buffer)).rejects.toThrow(/recorded step cannot read back/);
      const rec = gpu.endRecording();
      expect(Array.from(await out.read())).toEqual([12, 24, 36, 48]);
      expect(rec.dispatches).toBe(2);
      expect(rec.claimed.length).toBeGreaterThan(0);

      // Buffers made between replays never come from the recording.
      const owned = new Set(rec.claimed);
      const others = ctx.tidy(() => [0, 1, 2, 3].map(() => ctx.persistent([4])));
      for (const t of others) expect(owned.has(t.buffer)).toBe(false);

      x = Float32Array.of(-1, 0, 0.5, 7);
      gpu.replay(rec);
      expect(Array.from(await out.read())).toEqual([8, 20, 31, 54]);
      expect(counted).toBe(1);

      x = new Float32Array(5);
      expect(() => gpu.replay(rec)).toThrow(/changed size/);
      gpu.releaseRecording(rec);
      expect(() => gpu.replay(rec)).toThrow(/released/);
    } finally {
      ctx.dispose();
      gpu.destroy();
    }
  });
});
