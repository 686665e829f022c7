/**
 * The GPU runtime: size-class pooling, the pipeline cache, and failures that surface as clear
 * errors instead of hangs — a tensor larger than the adapter allows, an allocation the device
 * refuses, and a lost device (simulated with `device.destroy()`).
 */
import { describe, expect, it } from 'vitest';
import { sizeClass } from '../../src/gpu/buffer-pool.ts';
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError } from '../../src/gpu/errors.ts';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';

describe('GPU runtime', () => {
  it('size classes: at most ~25 % waste, monotonic, 256-byte aligned', () => {
    let prev = 0;
    for (let bytes = 1; bytes < 1 << 24; bytes = Math.ceil(bytes * 1.37) + 1) {
      const c = sizeClass(bytes);
      expect(c).toBeGreaterThanOrEqual(bytes);
      expect(c % 256).toBe(0);
      expect(c).toBeGreaterThanOrEqual(prev);
      if (bytes > 1024) expect(c / bytes).toBeLessThanOrEqual(1.25);
      prev = c;
    }
  });

  it('recycles buffers by class and caches pipelines; reports the adapter', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    try {
      expect(typeof gpu.adapter.isFallbackAdapter).toBe('boolean');
      // The device has the adapter's own limits, not WebGPU's defaults (128 MiB bindings;
      // lavapipe's own is also 128 MiB, SwiftShader's 1 GiB): asked of a second instance.
      const { create } = await import('webgpu');
      const own = (await create([]).requestAdapter({ powerPreference: 'high-performance' }))!.limits as unknown as Record<string, number>;
      for (const [name, value] of Object.entries(gpu.adapter.limits)) expect(value, name).toBe(own[name]);
      expect(Object.keys(gpu.adapter.limits)).toContain('maxStorageBufferBindingSize');
      const a = ctx.tidy(() => ew.scale(ctx.fromArray([1, 2, 3], [3]), 2));
      ctx.tidy(() => void ew.scale(ctx.fromArray([1, 2, 3], [3]), 2)); // warm: two buffers in the pool
      const created = gpu.pool.allocatedBytes;
      const pipelines = gpu.stats.pipelines;
      for (let i = 0; i < 5; i++) ctx.tidy(() => void ew.scale(ctx.fromArray([1, 2, 3], [3]), 2));
      expect(gpu.pool.allocatedBytes).toBe(created);
      expect(gpu.stats.pipelines).toBe(pipelines);
      expect(Array.from(await a.read())).toEqual([2, 4, 6]);
    } finally {
      ctx.dispose();
      gpu.destroy();
    }
  });

  it('a tensor beyond the adapter limit is refused with advice', async () => {
    const gpu = await createNodeGpu();
    try {
      const max = gpu.limits.maxStorageBufferBindingSize;
      expect(() => gpu.buffer(max + 4)).toThrow(GpuOutOfMemoryError);
      expect(() => gpu.buffer(max + 4)).toThrow(/smaller batch size/);
    } finally {
      gpu.destroy();
    }
  });

  it('a device error surfaces at the next read instead of hanging', async () => {
    const gpu = await createNodeGpu();
    try {
      // An invalid command: a copy past the end of a buffer.
      const small = gpu.buffer(256);
      const other = gpu.buffer(256);
      gpu.copy(small, other, 4096);
      await expect(gpu.read(other, 4)).rejects.toThrow(GpuValidationError);
      // The device keeps working afterwards.
      const ok = gpu.upload(Float32Array.of(7));
      expect(Array.from(await gpu.readFloat32(ok, 1))).toEqual([7]);
    } finally {
      gpu.destroy();
    }
  });

  it('a lost device rejects pending and later work with GpuDeviceLostError', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    const x = ctx.fromArray([1, 2, 3, 4], [4]);
    const pending = ew.sum(x).read();
    gpu.device.destroy();
    await expect(pending).rejects.toThrow();
    // Give the lost promise a turn to settle, then every call names the loss.
    await new Promise((r) => setTimeout(r, 50));
    expect(gpu.isLost).toBe(true);
    expect(() => ew.scale(x, 2)).toThrow(GpuDeviceLostError);
    expect(() => ew.scale(x, 2)).toThrow(/resume from the checkpoint/);
  });
});
