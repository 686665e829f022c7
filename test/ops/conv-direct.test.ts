/**
 * The direct input-gradient kernel (shaders/conv-direct.wgsl, planned by src/ops/conv-plan.ts; the
 * auto-tune candidate `direct` of a `dx` key) against the float64 reference, for 1, 2 and 4
 * pixels per invocation, packed (OHWI) and OIHW weights, on awkward shapes: odd grids (uneven sub-pixel classes, a last slot
 * with absent pixels), groups, channels per group not a multiple of 4 (the scalar path) and
 * multiples of 4 (the vec4 path), stride 1 / 2 / 3, a 1x1 stride-2 kernel (classes with no
 * tap), bias. conv2d.test.ts / conv-transpose.test.ts run it as well, through `withConvConfig`.
 */
import { describe, expect, it } from 'vitest';
import { inputGrad } from '../../src/ops/conv-launch.ts';
import { directApplies, type ConvGeometry } from '../../src/ops/conv-plan.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import * as ref from '../reference/conv2d.ts';

// As in conv2d.test.ts: a dx value is an f32 sum of n = taps * Cout/groups products (+1 for
// the bias) with |term| <= 1; its rounding error is ~3e-8 * n, so 1e-7 * n + 1e-6 is a ~3x
// margin, while one missing or wrong term (~0.1-1) is far outside it.
const sumTol = (n: number) => ({ atol: 1e-7 * n + 1e-6, rtol: 1e-5 });

const shapes: (ref.ConvGeometry & { name: string; bias: boolean })[] = [
  { name: 'k4 s2 p1 (convT 4x4/2), vec4, odd 7x9 grid, B2', B: 2, H: 7, W: 9, Cin: 8, Cout: 12, kh: 4, kw: 4, stride: 2, pad: 1, groups: 1, bias: true },
  { name: 'k3 s2 p1 groups 2, 3 / 5 channels per group (scalar)', B: 1, H: 5, W: 6, Cin: 6, Cout: 10, kh: 3, kw: 3, stride: 2, pad: 1, groups: 2, bias: false },
  { name: 'k3 s1 p1 groups 2, vec4, 5x7', B: 1, H: 5, W: 7, Cin: 8, Cout: 8, kh: 3, kw: 3, stride: 1, pad: 1, groups: 2, bias: true },
  { name: 'k1 s2 p0 (classes without taps: bias only), 5 -> 4', B: 1, H: 3, W: 4, Cin: 5, Cout: 4, kh: 1, kw: 1, stride: 2, pad: 0, groups: 1, bias: true },
  { name: 'k5 s3 p2, vec4, 7x11 (3 column classes, partial slots)', B: 1, H: 7, W: 11, Cin: 4, Cout: 4, kh: 5, kw: 5, stride: 3, pad: 2, groups: 1, bias: false },
  { name: 'k2x3 s2 p0, 13 -> 7 channels (cin 13: a last quad of 1)', B: 2, H: 4, W: 7, Cin: 13, Cout: 7, kh: 2, kw: 3, stride: 2, pad: 0, groups: 1, bias: true },
];

describe('direct input-gradient kernel vs the reference', () => {
  const getCtx = useContext();

  for (const s of shapes) {
    for (const [px, packed] of [[1, true], [2, true], [4, true], [2, false], [4, false]] as const) {
      it(`${s.name}, ${px} px per invocation, ${packed ? 'packed' : 'OIHW'} weight`, async () => {
        const ctx = getCtx();
        const rng = new Rng(s.Cin * 7 + s.Cout + s.kh * 100 + px);
        const { Ho, Wo } = ref.convOutSize(s);
        const inL = SiteLayout.dense(s.B, s.H, s.W);
        const outL = SiteLayout.dense(s.B, Ho, Wo);
        const g: ConvGeometry = {
          batch: s.B, inH: s.H, inW: s.W, outH: Ho, outW: Wo, cin: s.Cin, cout: s.Cout, groups: s.groups,
          kh: s.kh, kw: s.kw, stride: s.stride, pad: s.pad, inRows: inL.rows, outRows: outL.rows,
          inL, outL, pointwise: false,
        };
        expect(directApplies(g)).toBe(true);
        const ws = f32(rng.array((s.Cout * s.Cin * s.kh * s.kw) / s.groups));
        const gys = f32(rng.array(outL.rows * s.Cout));
        const bs = s.bias ? f32(rng.array(s.Cin)) : null;
        const w = ctx.fromArray(ws, [s.Cout, s.Cin / s.groups, s.kh, s.kw]);
        const dy = ctx.fromArray(gys, [outL.rows, s.Cout], outL);
        const b = bs ? ctx.fromArray(bs, [s.Cin]) : null;
        const dx = ctx.empty([inL.rows, s.Cin]);
        // Fill dx with NaN first: every element must be written (also pixels no tap reaches).
        ctx.gpu.write(dx.buffer, new Float32Array(inL.rows * s.Cin).fill(NaN));

        const before = ctx.gpu.stats.workgroups;
        inputGrad(ctx, g, 'f32', dy.buffer, w, b?.buffer ?? null, dx.buffer, packed ? { direct: px } : { direct: px, packW: false });
        // The direct kernel ran (not a GEMM): packing ceil(weights / 256) workgroups (none for
        // 1x1 or the OIHW weight), then ceil(slots * groups * quads / 64) of the shader's header.
        const pack = packed && s.kh * s.kw > 1 ? Math.ceil(ws.length / 256) : 0;
        const slots = s.B * s.H * s.stride * Math.ceil(Math.ceil(s.W / s.stride) / px);
        const direct = Math.ceil((slots * s.groups * Math.ceil(s.Cin / s.groups / 4)) / 64);
        expect(ctx.gpu.stats.workgroups - before).toBe(pack + direct);

        const want = ref.convBackward(new Float64Array(s.B * s.H * s.W * s.Cin), ws, gys, s).dx;
        if (bs) for (let i = 0; i < want.length; i++) want[i]! += bs[i % s.Cin]!;
        expectClose(await dx.read(), want, sumTol((s.kh * s.kw * s.Cout) / s.groups + 1), 'dx');
        ctx.dispose();
      });
    }
  }

  it('refuses sparse and 1x1 stride-1 geometries (they run the GEMM)', () => {
    const L = SiteLayout.dense(1, 4, 4);
    const base: ConvGeometry = {
      batch: 1, inH: 4, inW: 4, outH: 4, outW: 4, cin: 4, cout: 4, groups: 1, kh: 1, kw: 1, stride: 1, pad: 0,
      inRows: 16, outRows: 16, inL: L, outL: L, pointwise: true,
    };
    expect(directApplies(base)).toBe(false);
    const sparse = SiteLayout.sparse(1, 4, 4, Uint32Array.from([0, 5, 10]));
    expect(directApplies({ ...base, kh: 3, kw: 3, pad: 1, pointwise: false, inL: sparse, outL: sparse, inRows: 3, outRows: 3 })).toBe(false);
  });
});
