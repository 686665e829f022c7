import { describe, expect, it } from 'vitest';
import { convTranspose2d } from '../../src/ops/conv2d.ts';
import { withConvConfig } from '../../src/ops/conv-tuning.ts';
import { itUnderForcedConfigs, SWITCH_CONFIGS } from '../helpers/conv-configs.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/conv2d.ts';
import type { DType } from '../../src/tensor/precision.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// As in conv2d.test.ts: each value is an f32 sum of n terms with |term| <= 1 (n = the taps
// that reach an output times Cin for the forward, taps*Cout for dx, output rows for dw/db);
// its rounding error is ~3e-8 * n, so 1e-7 * n + 1e-6 leaves a ~3x margin.
const sumTol = (n: number) => ({ atol: 1e-7 * n + 1e-6, rtol: 1e-5 });
// f16 activations (conv2d.test.ts derives it): x and dy rounded to f16 before the reference
// sees them, the sums in f32 (the bound above), y and dx stored as f16 once (one f16 ulp).
const activationTol = (dtype: DType, n: number) => (dtype === 'f16' ? storedAsF16(sumTol(n)) : sumTol(n));

describe('convTranspose2d reference (finite differences)', () => {
  for (const g of [
    { B: 1, H: 3, W: 2, Cin: 2, Cout: 3, kh: 4, kw: 4, stride: 2, pad: 1 },
    { B: 2, H: 2, W: 3, Cin: 3, Cout: 2, kh: 3, kw: 3, stride: 2, pad: 1 },
    { B: 1, H: 3, W: 3, Cin: 2, Cout: 2, kh: 3, kw: 3, stride: 1, pad: 1 },
  ]) {
    it(`dx, dw, db for ${JSON.stringify(g)}`, () => {
      const rng = new Rng(4);
      const x = rng.array(g.B * g.H * g.W * g.Cin);
      const w = rng.array(g.Cin * g.Cout * g.kh * g.kw);
      const b = rng.array(g.Cout);
      const { Ho, Wo } = ref.convTransposeOutSize(g);
      const proj = projection(g.B * Ho * Wo * g.Cout);
      const { dx, dw, db } = ref.convTransposeBackward(x, w, proj, g);
      expectGradientMatches((p) => dot(ref.convTransposeForward(p, w, b, g), proj), x, dx, 'dx');
      expectGradientMatches((p) => dot(ref.convTransposeForward(x, p, b, g), proj), w, dw, 'dw');
      expectGradientMatches((p) => dot(ref.convTransposeForward(x, w, p, g), proj), b, db, 'db');
    });
  }

  it('is the adjoint of conv2d with the same weight read as OIHW', () => {
    // <convT(x), y> = <x, conv(y)> for the conv from the output grid back to the input grid.
    const rng = new Rng(12);
    const t = { B: 2, H: 3, W: 4, Cin: 3, Cout: 2, kh: 4, kw: 4, stride: 2, pad: 1 };
    const { Ho, Wo } = ref.convTransposeOutSize(t);
    const c = { B: 2, H: Ho, W: Wo, Cin: t.Cout, Cout: t.Cin, kh: 4, kw: 4, stride: 2, pad: 1, groups: 1 };
    const x = rng.array(t.B * t.H * t.W * t.Cin);
    const y = rng.array(t.B * Ho * Wo * t.Cout);
    const w = rng.array(t.Cin * t.Cout * 16);
    expect(dot(ref.convTransposeForward(x, w, null, t), y)).toBeCloseTo(dot(x, ref.convForward(y, w, null, c)), 10);
  });
});

interface Case {
  name: string;
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  k: number;
  stride: number;
  pad: number;
  bias?: boolean;
}

const cases: Case[] = [
  { name: 'k4 s2 p1 (the decoder), batch 1, 3 -> 5, 3x5', B: 1, H: 3, W: 5, Cin: 3, Cout: 5, k: 4, stride: 2, pad: 1, bias: true },
  { name: 'k4 s2 p1, 13 -> 7, 4x3, no bias', B: 2, H: 4, W: 3, Cin: 13, Cout: 7, k: 4, stride: 2, pad: 1 },
  { name: 'k4 s2 p1, several tiles: 20 -> 70, 5x5', B: 1, H: 5, W: 5, Cin: 20, Cout: 70, k: 4, stride: 2, pad: 1, bias: true },
  { name: 'k3 s2 p1 (uneven sub-pixel classes), 5 -> 3, 4x5', B: 2, H: 4, W: 5, Cin: 5, Cout: 3, k: 3, stride: 2, pad: 1, bias: true },
  { name: 'k2 s2 p0, 3 -> 13, 3x3', B: 1, H: 3, W: 3, Cin: 3, Cout: 13, k: 2, stride: 2, pad: 0, bias: true },
  { name: 'k3 s1 p1, 5 -> 5, 5x7', B: 1, H: 5, W: 7, Cin: 5, Cout: 5, k: 3, stride: 1, pad: 1 },
  { name: 'k1 s2 p0 (classes without taps write zeros), 4 -> 3', B: 1, H: 3, W: 4, Cin: 4, Cout: 3, k: 1, stride: 2, pad: 0, bias: true },
  // Cout (Cin) a multiple of 4: dx, the adjoint's forward GEMM (the forward, its input-gradient
  // GEMM) gathers 4 channels per load.
  { name: 'k4 s2 p1, 6 -> 8, 4x5, vec4 gather in dx', B: 2, H: 4, W: 5, Cin: 6, Cout: 8, k: 4, stride: 2, pad: 1, bias: true },
  // Stride 1: the forward runs as a forward conv with the flipped weight, padding k-1-pad.
  { name: 'k3 s1 p0, 8 -> 4, 4x5 (flipped forward, vec4)', B: 1, H: 4, W: 5, Cin: 8, Cout: 4, k: 3, stride: 1, pad: 0, bias: true },
];

describe('convTranspose2d on the GPU vs the reference', () => {
  const getCtx = useContext();

  for (const tc of cases) {
    it(tc.name, async () => {
      await checkCase(getCtx(), tc);
    });
  }
  // Each case again with the default kernels' switches off (src/ops/conv-plan.ts).
  for (const { label, config: v } of SWITCH_CONFIGS) {
    // Only the cases whose path the setting changes: the flip acts on stride 1, the vec4
    // gather on Cin (forward) or Cout (dx) % 4 == 0.
    const changed = (c: Case) =>
      (v.flip === false && c.stride === 1) || (v.vec4 === false && (c.Cout % 4 === 0 || c.Cin % 4 === 0));
    for (const tc of cases.filter(changed)) {
      it(`${tc.name} [${label}]`, () => withConvConfig(getCtx().gpu, v, () => checkCase(getCtx(), tc)));
    }
  }

  // The auto-tune's candidate configurations, forced on every conv GEMM (forward = the
  // sub-pixel pass, dx = a strided forward, dw = split-K).
  const forcedCases = cases.filter((c) => /several tiles|uneven|vec4 gather in dx|flipped/.test(c.name));
  itUnderForcedConfigs(() => getCtx().gpu, forcedCases, (tc) => checkCase(getCtx(), tc));

  // f16 activations: every case with the defaults (sub-pixel GEMMs, flipped stride 1, vec4),
  // the forced cases with the switches off and with the direct kernel.
  for (const tc of cases) {
    it(`${tc.name} [f16]`, async (t) => {
      needF16(t, getCtx());
      await checkCase(getCtx(), tc, 'f16');
    });
  }
  for (const [label, config] of [['no flip, no vec4', { flip: false, vec4: false }], ['direct dx 2 px', { direct: 2 }]] as const) {
    for (const tc of forcedCases) {
      it(`${tc.name} [f16, ${label}]`, (t) => {
        needF16(t, getCtx());
        return withConvConfig(getCtx().gpu, config, () => checkCase(getCtx(), tc, 'f16'));
      });
    }
  }

  async function checkCase(ctx: ReturnType<typeof getCtx>, tc: Case, dtype: DType = 'f32'): Promise<void> {
    const rng = new Rng(tc.Cin * 31 + tc.Cout + tc.k);
    const g = { B: tc.B, H: tc.H, W: tc.W, Cin: tc.Cin, Cout: tc.Cout, kh: tc.k, kw: tc.k, stride: tc.stride, pad: tc.pad };
    const { Ho, Wo } = ref.convTransposeOutSize(g);
    const inL = SiteLayout.dense(tc.B, tc.H, tc.W);
    const stored = dtype === 'f16' ? asF16 : f32;
    const xs = stored(rng.array(inL.rows * tc.Cin));
    const ws = f32(rng.array(tc.Cin * tc.Cout * tc.k * tc.k));
    const bs = tc.bias ? f32(rng.array(tc.Cout)) : null;
    const outRows = tc.B * Ho * Wo;
    const gys = stored(rng.array(outRows * tc.Cout));

    const x = ctx.fromArray(xs, [inL.rows, tc.Cin], inL, dtype);
    x.requiresGrad = true;
    const w = ctx.parameter(`w ${tc.name}`, [tc.Cin, tc.Cout, tc.k, tc.k], ws);
    const b = bs ? ctx.parameter(`b ${tc.name}`, [tc.Cout], bs) : null;
    const y = convTranspose2d(x, w, b, { stride: tc.stride, padding: tc.pad });
    expect(y.shape).toEqual([outRows, tc.Cout]);
    expect(y.layout!.equals(SiteLayout.dense(tc.B, Ho, Wo))).toBe(true);

    // An output site is reached by at most ceil(k/s)^2 taps, each over Cin channels.
    const reach = Math.ceil(tc.k / tc.stride) ** 2;
    expect(y.dtype).toBe(dtype);
    expectClose(await y.read(), ref.convTransposeForward(xs, ws, bs, g), activationTol(dtype, reach * tc.Cin + 1), 'forward');
    const grads = ctx.backward(y, ctx.fromArray(gys, [outRows, tc.Cout], y.layout, dtype));
    const r = ref.convTransposeBackward(xs, ws, gys, g);
    expectClose(await grads.get(x.id)!.read(), r.dx, activationTol(dtype, tc.k * tc.k * tc.Cout), 'dx');
    expectClose(await w.grad!.read(), r.dw, sumTol(inL.rows), 'dw');
    if (b) expectClose(await b.grad!.read(), r.db, sumTol(outRows), 'db');
    ctx.dispose();
  }

  it('mid-graph: convT -> scale -> used twice -> sum, gradients vs the reference', async () => {
    const ctx = getCtx();
    const rng = new Rng(13);
    const g = { B: 1, H: 2, W: 3, Cin: 3, Cout: 2, kh: 4, kw: 4, stride: 2, pad: 1 };
    const inL = SiteLayout.dense(g.B, g.H, g.W);
    const xs = f32(rng.array(inL.rows * g.Cin));
    const ws = f32(rng.array(g.Cin * g.Cout * 16));
    const bs = f32(rng.array(g.Cout));
    const x = ctx.fromArray(xs, [inL.rows, g.Cin], inL);
    x.requiresGrad = true;
    const w = ctx.parameter('w-mid', [g.Cin, g.Cout, 4, 4], ws);
    const b = ctx.parameter('b-mid', [g.Cout], bs);
    // L = sum(z*z + z), z = 0.5 * convT(x): dL/dy = 0.5 * (2z + 1).
    const z = ew.scale(convTranspose2d(x, w, b, { stride: 2, padding: 1 }), 0.5);
    const loss = ew.sum(ew.add(ew.mul(z, z), z));
    const grads = ctx.backward(loss);

    const lossOf = (xv: Float64Array) =>
      ref.convTransposeForward(xv, ws, bs, g).reduce((s, y) => s + 0.25 * y * y + 0.5 * y, 0);
    const gy = ref.convTransposeForward(xs, ws, bs, g).map((y) => 0.5 * y + 0.5);
    const r = ref.convTransposeBackward(xs, ws, gy, g);
    expectGradientMatches(lossOf, xs, r.dx, 'dx of the composite', { atol: 1e-5, rtol: 1e-5 });
    expectClose(await grads.get(x.id)!.read(), r.dx, sumTol(60), 'dx');
    expectClose(await w.grad!.read(), r.dw, sumTol(60), 'dw');
    expectClose(await b.grad!.read(), r.db, sumTol(60), 'db');
    ctx.dispose();
  });

  it('k4 s2 p1 dispatches one GEMM per sub-pixel parity class', async () => {
    const ctx = getCtx();
    const rng = new Rng(14);
    // 2 images of 16x16 -> 32x32 outputs, 8 -> 8 channels: each of the 4 parity classes has
    // 2*16*16 = 512 output rows = 8 M tiles of 64 (16 of 32 on a software adapter, whose tiles
    // are all 32x32: conv-plan.ts `uniformTiles`) and one N tile, so the GEMM dispatch is
    // M tiles x 4 classes, plus 4 workgroups packing the 1024 weights. (Each class loops over
    // its own 2x2 taps, K = 4*Cin; the values are checked against the reference above.)
    const L = SiteLayout.dense(2, 16, 16);
    const x = ctx.fromArray(f32(rng.array(L.rows * 8)), [L.rows, 8], L);
    const w = ctx.fromArray(f32(rng.array(8 * 8 * 16)), [8, 8, 4, 4]);
    const before = ctx.gpu.stats.workgroups;
    convTranspose2d(x, w, null, { stride: 2, padding: 1 });
    const tm = ctx.gpu.adapter.isFallbackAdapter ? 32 : 64;
    expect(ctx.gpu.stats.workgroups - before).toBe((512 / tm) * 4 + 4);
    await ctx.gpu.sync();
    ctx.dispose();
  });
});
