/**
 * A launch's mistakes are errors before anything is encoded: a binding the entry point's code
 * names but the caller left out, a binding the shader lacks, a uniform field left out or
 * unknown. A binding given as null (code an override constant switches off) and one the
 * entry point never names get the placeholder, and the launch runs.
 */
import { describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';

describe('launch errors', () => {
  it('names the pipeline and the binding or field', async () => {
    const gpu = await createNodeGpu();
    try {
      const x = gpu.upload(Float32Array.of(1, 2, 3, 4));
      const factor = gpu.upload(Float32Array.of(0.5));
      const y = gpu.buffer(16);
      const u = { n: 4, C: 1, chunk_rows: 0, plane: 4 };
      const dropPath = gpu.pipeline('channel', 'drop_path', { SPARSE: false });
      const dispatches = gpu.stats.dispatches;
      // drop_path names `sites` (under `if (SPARSE)`): leaving it out is an error ...
      expect(() => gpu.dispatch(dropPath, { x, factor, y }, u, [1])).toThrow(
        /channel:drop_path:SPARSE=false: the entry point uses binding 'sites' but no buffer was given/,
      );
      expect(() => gpu.dispatch(dropPath, { x, factor, y, sites: null, z: y }, u, [1])).toThrow(/no binding named 'z'/);
      expect(() => gpu.dispatch(dropPath, { x, factor, y, sites: null }, { n: 4, C: 1, plane: 4 }, [1])).toThrow(
        /channel:drop_path:SPARSE=false: uniform field 'chunk_rows' \(u32\) was not given/,
      );
      expect(() => gpu.dispatch(dropPath, { x, factor, y, sites: null }, { ...u, rows: 1 }, [1])).toThrow(/has no field 'rows'/);
      expect(() => gpu.dispatch(dropPath, { x, factor, y, sites: null }, null, [1])).toThrow(/no params were given/);
      expect(gpu.stats.dispatches).toBe(dispatches);
      // ... null says this launch does not read it; gamma and gy, never named, may be left out.
      gpu.dispatch(dropPath, { x, factor, y, sites: null }, u, [1]);
      expect(Array.from(await gpu.readFloat32(y, 4))).toEqual([0.5, 1, 1.5, 2]);
      expect(gpu.stats.dispatches).toBe(dispatches + 1);
    } finally {
      gpu.destroy();
    }
  });
});
