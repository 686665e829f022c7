/**
 * The storage variant of a pipeline (src/gpu/pipelines.ts): the text put in front of a shader,
 * the cache key (f32 keys unchanged, each variant its own pipeline), and the refusal of an f16
 * variant on a device without shader-f16.
 */
import { describe, expect, it } from 'vitest';
import { variantPrelude } from '../../src/gpu/pipelines.ts';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';

describe('storage variants', () => {
  it('prefixes the aliases, with enable f16 only where a type is f16', () => {
    expect(variantPrelude({})).toBe('alias act = f32;\nalias act4 = vec4<f32>;\nalias act_out = f32;\n');
    expect(variantPrelude({ act: 'f16' })).toBe('enable f16;\nalias act = f16;\nalias act4 = vec4<f16>;\nalias act_out = f16;\n');
    expect(variantPrelude({ act: 'f16', out: 'f32' })).toMatch(/^enable f16;\n.*alias act_out = f32;\n$/s);
  });

  it('keys the pipeline cache by variant; f32 keys are the plain ones; f16 needs shader-f16', async () => {
    const gpu = await createNodeGpu();
    try {
      const plain = gpu.pipeline('elementwise', 'add');
      expect(plain.label).toBe('elementwise:add:');
      expect(gpu.pipeline('elementwise', 'add', {}, { act: 'f32' })).toBe(plain);
      if (gpu.features.has('shader-f16')) {
        const half = gpu.pipeline('elementwise', 'add', {}, { act: 'f16' });
        expect(half.label).toBe('elementwise:add::act=f16');
        expect(half).not.toBe(plain);
        expect(gpu.pipeline('conv2d', 'gemm', { PASS: 2 }, { act: 'f16', out: 'f32' }).label).toBe('conv2d:gemm:PASS=2:act=f16:out=f32');
      } else {
        expect(() => gpu.pipeline('elementwise', 'add', {}, { act: 'f16' })).toThrow(/needs the WebGPU feature 'shader-f16'/);
      }
      await gpu.throwIfFailed();
    } finally {
      gpu.destroy();
    }
  });
});
