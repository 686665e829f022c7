/**
 * Every shader fits WebGPU's guaranteed limits, so a pipeline can be made on any adapter, not
 * only on one that grants more: at most 8 storage buffers and 12 uniform buffers per shader
 * stage (maxStorageBuffersPerShaderStage, maxUniformBuffersPerShaderStage defaults). All entry
 * points of a file share one bind-group layout listing every binding of the file (src/gpu's
 * pipelines), so the count is per file, includes resolved. lavapipe grants more than 8, so
 * Node tests alone would not notice a file over the limit; Chromium's SwiftShader grants 10.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBindings } from '../../src/gpu/wgsl-bindings.ts';
import { withIncludes } from '../../src/util/shader-includes.ts';

const MAX_STORAGE = 8;
const MAX_UNIFORM = 12;

describe('bindings per shader', () => {
  it(`every pipeline shader declares at most ${MAX_STORAGE} storage and ${MAX_UNIFORM} uniform buffers`, () => {
    const dir = new URL('../../shaders/', import.meta.url);
    const read = (name: string) => readFileSync(new URL(`${name}.wgsl`, dir), 'utf8');
    const all = readdirSync(dir).filter((f) => f.endsWith('.wgsl')).map((f) => f.slice(0, -5));
    const snippets = new Set(all.flatMap((f) => [...read(f).matchAll(/^\/\/ #include "(.+)\.wgsl"$/gm)].map((m) => m[1]!)));
    const load = withIncludes(read);
    const counts = all
      .filter((f) => !snippets.has(f))
      .map((f) => {
        const kinds = [...parseBindings(load(f)).values()].map((b) => b.type);
        return { f, storage: kinds.filter((t) => t !== 'uniform').length, uniform: kinds.filter((t) => t === 'uniform').length };
      });
    expect(counts.length).toBeGreaterThan(10);
    expect(counts.filter((c) => c.storage > MAX_STORAGE || c.uniform > MAX_UNIFORM)).toEqual([]);
    // The check can fail: conv2d.wgsl, the widest, is at the limit.
    expect(Math.max(...counts.map((c) => c.storage))).toBe(MAX_STORAGE);
  });
});
