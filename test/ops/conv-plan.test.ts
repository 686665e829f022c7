/**
 * The conv launch rules (src/ops/conv-plan.ts) as data, without a device: which launches each
 * pass and config plans, the reduction-step rule, the split-K bounds (partials' memory and the
 * dispatch limit), and the auto-tune's dedup of candidates through their plans. The numerics
 * of every plan are checked against the float64 reference in conv2d.test.ts,
 * conv-transpose.test.ts and conv-direct.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { planConv, type ConvGeometry } from '../../src/ops/conv-plan.ts';
import { MAX_PARTIAL_FLOATS } from '../../src/ops/chunks.ts';
import { candidatesFor } from '../../src/ops/autotune-candidates.ts';
import { parseUniformLayout } from '../../src/gpu/wgsl-uniforms.ts';
import { parseBindings } from '../../src/gpu/wgsl-bindings.ts';
import { referencedBy } from '../../src/gpu/wgsl-source.ts';
import { snapshotShaders } from '../../src/platform/node/shader-snapshot.ts';
import { fileURLToPath } from 'node:url';

const LIMIT = 65535;

/** A dense conv geometry (no layouts: the dense path). */
function dense(o: { b?: number; h: number; w: number; cin: number; cout: number; k: number; stride?: number; pad?: number; groups?: number }): ConvGeometry {
  const stride = o.stride ?? 1;
  const pad = o.pad ?? 0;
  const b = o.b ?? 1;
  const outH = Math.floor((o.h + 2 * pad - o.k) / stride) + 1;
  const outW = Math.floor((o.w + 2 * pad - o.k) / stride) + 1;
  return {
    batch: b, inH: o.h, inW: o.w, outH, outW, cin: o.cin, cout: o.cout, groups: o.groups ?? 1, kh: o.k, kw: o.k,
    stride, pad, inRows: b * o.h * o.w, outRows: b * outH * outW, inL: null, outL: null,
    pointwise: o.k === 1 && stride === 1 && pad === 0,
  };
}

const entries = (p: ReturnType<typeof planConv>) => p.launches.map((l) => `${l.entry}${l.constants.PASS ?? ''}`);

describe('conv plans', () => {
  const g3 = dense({ h: 9, w: 11, cin: 8, cout: 12, k: 3, pad: 1 });
  const opts = { bias: false, maxWorkgroups: LIMIT };

  it('forward packs a k>1 weight, then one GEMM with vec4 gather when cin_g % 4 == 0', () => {
    const p = planConv('fwd', g3, {}, opts);
    expect(entries(p)).toEqual(['pack_weights', 'gemm0']);
    expect(p.temps.packed).toBe(12 * 8 * 9);
    expect(p.launches[1]!.constants).toMatchObject({ VEC4_A: true, TM: 64, TN: 32, KT: 16, RB: 4 });
    expect(p.launches[1]!.buffers).toEqual({ src: 'a', src4: 'a', wp: 'packed', gy: null, bias: null, dst: 'out', sites: null, row_of: null });
    expect(entries(planConv('fwd', dense({ h: 4, w: 4, cin: 5, cout: 3, k: 1 }), {}, opts))).toEqual(['gemm0']);
  });

  it('uniformTiles (software adapters): 32x32 tiles wherever the config leaves them to the default, an explicit tile still wins', () => {
    const big = dense({ h: 16, w: 16, cin: 64, cout: 96, k: 3, pad: 1 });
    const gemm = (p: ReturnType<typeof planConv>) => p.launches.find((l) => l.entry === 'gemm')!;
    expect(gemm(planConv('fwd', big, {}, opts)).constants).toMatchObject({ TM: 64, TN: 64 });
    const small = { ...opts, uniformTiles: true };
    for (const pass of ['fwd', 'dx', 'dw'] as const) {
      const p = planConv(pass, big, { flip: false }, small);
      expect(gemm(p).constants, pass).toMatchObject({ TM: 32, TN: 32 });
      // The grid follows the tiles: more of them than with 64-wide ones.
      expect(gemm(p).grid[0] * gemm(p).grid[1] * gemm(p).grid[2], pass).toBeGreaterThan(gemm(planConv(pass, big, { flip: false }, opts)).grid.reduce((a, b) => a * b, 1));
    }
    expect(gemm(planConv('fwd', big, { tm: 64 }, small)).constants).toMatchObject({ TM: 64, TN: 32 });
  });

  it('stride-1 input gradient: the flipped forward by default, the input-gradient GEMM with flip off', () => {
    const flipped = planConv('dx', g3, {}, opts);
    expect(entries(flipped)).toEqual(['pack_weights', 'gemm0']);
    expect(flipped.launches[0]!.constants.FLIP).toBe(true);
    expect(flipped.launches[1]!.params.pad).toBe(1); // k-1-pad
    expect(entries(planConv('dx', g3, { flip: false }, opts))).toEqual(['pack_weights', 'gemm1']);
    expect(entries(planConv('dx', g3, { flip: false, packW: false }, opts))).toEqual(['gemm1']);
    const direct = planConv('dx', g3, { direct: 4 }, opts);
    expect(direct.launches.map((l) => l.entry)).toEqual(['pack_weights', 'direct_input_grad']);
  });

  it('a 32-row reduction step needs 32x32 tiles', () => {
    expect(() => planConv('fwd', g3, { kt: 32 }, opts)).toThrow(/32-row reduction step needs 32x32 tiles/);
    expect(planConv('fwd', g3, { kt: 32, tm: 32, tn: 32 }, opts).launches[1]!.constants.KT).toBe(32);
  });

  it('split-K chunks stay within the partials bound and the dispatch limit', () => {
    const big = dense({ b: 4, h: 256, w: 256, cin: 512, cout: 512, k: 3, pad: 1 });
    const p = planConv('dw', big, {}, opts);
    const Kg = 9 * 512;
    const chunks = p.launches[1]!.params.chunks!;
    expect(chunks * 512 * Kg).toBeLessThanOrEqual(MAX_PARTIAL_FLOATS);
    expect(p.temps.partial).toBe(chunks * 512 * Kg);
    const gemm = p.launches[0]!;
    expect(gemm.params.chunk_rows! * chunks).toBeGreaterThanOrEqual(big.outRows);
    // z = N tiles x groups x chunks stays within a small dispatch limit.
    const small = planConv('dw', dense({ b: 8, h: 64, w: 64, cin: 64, cout: 64, k: 3, pad: 1 }), {}, { bias: false, maxWorkgroups: 40 });
    expect(small.launches[0]!.grid[2]).toBeLessThanOrEqual(40);
    expect(() => planConv('fwd', g3, {}, { bias: false, maxWorkgroups: 0 })).toThrow(/exceed the dispatch limit/);
  });

  it('the auto-tune keeps only candidates whose plans differ', () => {
    // Strided: the flip does not apply, so {flip: false} plans as the default and is dropped.
    const strided = dense({ h: 9, w: 9, cin: 8, cout: 8, k: 3, stride: 2, pad: 1 });
    const dx = candidatesFor('dx', strided, { maxWorkgroups: LIMIT }, 6);
    expect(dx).not.toContainEqual({ flip: false });
    expect(dx[0]).toEqual({});
    // Stride 1: the flip applies, so turning it off is a plan of its own.
    expect(candidatesFor('dx', g3, { maxWorkgroups: LIMIT }, 6)).toContainEqual({ flip: false });
    expect(candidatesFor('fwd', g3, { maxWorkgroups: LIMIT }, 6, [{}, { flip: false }, { direct: 4 }, { minChunkRows: 16 }])).toEqual([{}]);
  });

  it("every launch of every pass gives exactly its shader's uniform fields and every binding its entry point names", () => {
    const shaders = snapshotShaders(fileURLToPath(new URL('../../shaders/', import.meta.url)));
    const sparseL = { isDense: false } as ConvGeometry['inL'];
    const geometries = [
      g3, { ...g3, inL: sparseL, outL: sparseL }, dense({ h: 7, w: 9, cin: 6, cout: 5, k: 3, stride: 2, pad: 1 }),
      dense({ h: 4, w: 4, cin: 5, cout: 3, k: 1 }),
    ];
    const configs = [{}, { flip: false }, { direct: 2 as const }, { direct: 4 as const, packW: false }, { vec4: false, packW: false }];
    let launches = 0;
    for (const g of geometries) {
      for (const pass of ['fwd', 'dx', 'dw'] as const) {
        for (const cfg of configs) {
          for (const l of planConv(pass, g, cfg, { bias: true, maxWorkgroups: LIMIT }).launches) {
            const code = shaders(l.shader);
            const fields = parseUniformLayout(code)!.fields.filter((f) => !f.padding).map((f) => f.name);
            expect(Object.keys(l.params).sort(), `${l.entry} params`).toEqual([...fields].sort());
            const names = [...parseBindings(code).keys()].filter((n) => n !== 'params');
            const used = referencedBy(code, l.entry, names);
            for (const n of used) expect(l.buffers, `${l.shader} ${l.entry} binding ${n}`).toHaveProperty(n);
            launches++;
          }
        }
      }
    }
    expect(launches).toBeGreaterThan(100);
  });
});
