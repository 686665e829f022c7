/**
 * Recorded command sequences (src/gpu/recording.ts): recording runs nothing; ending it gives
 * the step's transient buffers memory by liveness (buffers whose live ranges do not overlap
 * share memory); a replay runs the same work with its step-dependent writes refilled and its
 * host bookkeeping done again; the recording owns its buffers (nothing outside can be handed
 * one between replays); readbacks inside a recording, tensors kept past its end and refills
 * that change size are refused.
 */
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';

describe('recorded command sequences', () => {
  it('replays with refilled inputs, constants kept, liveness-assigned buffers it owns', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    try {
      const out = ctx.persistent([1024]);
      out.read(); // settle its zero-fill before recording
      const N = 1024;
      let x = Float32Array.from({ length: N }, (_, i) => i);
      gpu.beginRecording();
      ctx.tidy(() => {
        const input = ctx.fromArray(() => x, [N]);
        const constant = ctx.fromArray(Float32Array.from({ length: N }, () => 10), [N]);
        // A chain: each temporary dies after the next op, so a few buffers serve all of it.
        let y: Tensor = ew.add(input, constant);
        for (let k = 0; k < 8; k++) y = ew.scale(y, 0.5);
        gpu.copy(y.buffer, out.buffer, N * 4);
      });
      let counted = 0;
      gpu.hostEffect(() => void counted++);
      await expect(gpu.read(out.buffer)).rejects.toThrow(/recorded step cannot read back/);
      const rec = gpu.endRecording();
      expect(rec.dispatches).toBe(9);
      // Recording ran nothing: `out` still holds its zeros.
      expect(Array.from((await out.read()).slice(0, 3))).toEqual([0, 0, 0]);
      // 11 transient tensors of 4 KiB; at most 3 are live at once (two inputs and an output).
      expect(rec.virtual.length).toBe(11);
      expect(rec.livePeakBytes).toBeLessThanOrEqual(3 * 4096);
      expect(rec.assignedBytes).toBeLessThanOrEqual(3 * 4096);

      gpu.replay(rec);
      const want = (v: number) => (v + 10) / 256;
      expect(Array.from((await out.read()).slice(0, 3))).toEqual([want(0), want(1), want(2)]);
      expect(counted).toBe(1);

      // Buffers made between replays never come from the recording.
      const owned = new Set(rec.assigned);
      const others = ctx.tidy(() => [0, 1, 2, 3].map(() => ctx.persistent([N])));
      for (const t of others) expect(owned.has(t.buffer)).toBe(false);

      x = Float32Array.from({ length: N }, (_, i) => -i);
      gpu.replay(rec);
      expect(Array.from((await out.read()).slice(0, 3))).toEqual([want(0), want(-1), want(-2)]);
      expect(counted).toBe(2);

      x = new Float32Array(5);
      expect(() => gpu.replay(rec)).toThrow(/changed size|5 values for shape/);
      gpu.releaseRecording(rec);
      expect(() => gpu.replay(rec)).toThrow(/released/);
    } finally {
      ctx.dispose();
      gpu.destroy();
    }
  });

  it('records the commands eager code encodes, stands virtual buffers in for memory, and goes back to encoding after', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    try {
      const out = ctx.persistent([4]);
      const chain = () =>
        ctx.tidy(() => {
          const y = ew.scale(ew.add(ctx.fromArray([1, 2, 3, 4], [4]), ctx.fromArray([1, 1, 1, 1], [4])), 3);
          gpu.copy(y.buffer, out.buffer, 16);
        });
      await gpu.sync();
      const before = { ...gpu.stats };
      chain();
      const eagerDispatches = gpu.stats.dispatches - before.dispatches;
      expect(Array.from(await out.read())).toEqual([6, 9, 12, 15]);

      gpu.beginRecording();
      const virtual = gpu.buffer(64, 'scratch');
      expect(() => virtual.getMappedRange()).toThrow(/'scratch' of a step being recorded has no memory/);
      expect(() => virtual.destroy()).toThrow(/cannot be destroyed/);
      gpu.release(virtual);
      const lasting = gpu.buffer(64, 'kept', true);
      expect(lasting.size).toBeGreaterThanOrEqual(64); // a real pooled buffer, recording or not
      chain();
      const mid = { ...gpu.stats };
      const rec = gpu.endRecording();
      // Recording encoded and submitted nothing, and kept as many dispatches as eager code ran.
      expect(rec.dispatches).toBe(eagerDispatches);
      gpu.release(lasting);

      // The sink is the eager stream again: a write and a read run at once.
      const submits = gpu.stats.submits;
      gpu.write(out.buffer, Float32Array.of(7, 7, 7, 7));
      expect(Array.from(await out.read())).toEqual([7, 7, 7, 7]);
      expect(gpu.stats.submits).toBe(submits + 1);
      // One submit before endRecording: the eager chain's read (beginRecording had nothing left to flush).
      expect(mid.submits).toBe(before.submits + 1);
      expect(mid.dispatches).toBe(before.dispatches + eagerDispatches);
      gpu.replay(rec);
      expect(Array.from(await out.read())).toEqual([6, 9, 12, 15]);
      gpu.releaseRecording(rec);
    } finally {
      ctx.dispose();
      gpu.destroy();
    }
  });

  it('refuses a transient tensor kept past the end of the recording', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    try {
      gpu.beginRecording();
      ctx.tidy(() => ew.scale(ctx.fromArray([1, 2], [2]), 2)); // returned: kept in the outer scope
      expect(() => gpu.endRecording()).toThrow(/kept 1 transient tensor/);
    } finally {
      ctx.dispose();
      gpu.destroy();
    }
  });
});
