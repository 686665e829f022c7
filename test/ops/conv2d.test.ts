import { describe, expect, it } from 'vitest';
import { conv2d } from '../../src/ops/conv2d.ts';
import { withConvConfig } from '../../src/ops/conv-tuning.ts';
import { itUnderForcedConfigs, SWITCH_CONFIGS } from '../helpers/conv-configs.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { gatherSites, scatterToDense } from '../../src/ops/sparse.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import { patchMask, type ImageMask } from '../helpers/masks.ts';
import * as ref from '../reference/conv2d.ts';
import type { DType } from '../../src/tensor/precision.ts';
import type { Tolerance } from '../helpers/check.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';
import { gather, scatter } from '../reference/sparse.ts';

// Every GPU value is a sum of n f32 products with |term| <= 1 (inputs uniform in [-1, 1]):
// n = taps*Cin/groups + 1 for the forward, taps*Cout/groups for dx, output rows for dw and
// db. The f32 rounding error of such a sum is a random walk of n steps of at most 6e-8 times
// a partial sum of size ~sqrt(n)/2, i.e. ~3e-8 * n; 1e-7 * n (+1e-6) is a ~3x margin, while a
// single missing or wrong term (~0.1-1) is still 1000x larger at the sizes used here.
const sumTol = (n: number) => ({ atol: 1e-7 * n + 1e-6, rtol: 1e-5 });

// f16 storage (x, y, dy, dx f16; w, b, dw, db f32). The inputs are rounded to f16 before the
// reference sees them, so only what the kernel itself adds is measured: an f16 value times an
// f32 weight or an f16 gradient is one f32 product and the sum runs in f32, so the f32 bound
// above holds for the sum; y and dx are then stored as f16, one rounding (test/helpers/f16.ts:
// at most one f16 ulp, 2^-10 relative). dw and db are f32 results: the f32 bound alone. An f16
// accumulator would miss these by ~2^-11 * sqrt(n) of the partial sums.
const activationTol = (dtype: DType, n: number): Tolerance => (dtype === 'f16' ? storedAsF16(sumTol(n)) : sumTol(n));

describe('conv2d reference (finite differences)', () => {
  for (const g of [
    { B: 2, H: 4, W: 5, Cin: 2, Cout: 3, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1 },
    { B: 1, H: 5, W: 6, Cin: 4, Cout: 2, kh: 3, kw: 3, stride: 2, pad: 1, groups: 2 },
    { B: 1, H: 4, W: 4, Cin: 3, Cout: 2, kh: 2, kw: 2, stride: 2, pad: 0, groups: 1 },
  ]) {
    it(`dx, dw, db for ${JSON.stringify(g)}`, () => {
      const rng = new Rng(3);
      const x = rng.array(g.B * g.H * g.W * g.Cin);
      const w = rng.array((g.Cout * g.Cin * g.kh * g.kw) / g.groups);
      const b = rng.array(g.Cout);
      const { Ho, Wo } = ref.convOutSize(g);
      const proj = projection(g.B * Ho * Wo * g.Cout);
      const { dx, dw, db } = ref.convBackward(x, w, proj, g);
      expectGradientMatches((p) => dot(ref.convForward(p, w, b, g), proj), x, dx, 'dx');
      expectGradientMatches((p) => dot(ref.convForward(x, p, b, g), proj), w, dw, 'dw');
      expectGradientMatches((p) => dot(ref.convForward(x, w, p, g), proj), b, db, 'db');
    });
  }
});

interface Case {
  name: string;
  B: number;
  H: number;
  W: number;
  Cin: number;
  Cout: number;
  k: number;
  stride?: number;
  pad?: number;
  groups?: number;
  bias?: boolean;
  /** Sparse: a patch grid h x w and per-image kinds; absent = dense. */
  mask?: { h: number; w: number; images: ImageMask[] };
}

const cases: Case[] = [
  { name: 'dense 1x1 (pointwise), batch 1, 5 -> 13, 7x9', B: 1, H: 7, W: 9, Cin: 5, Cout: 13, k: 1, bias: true },
  { name: 'dense 3x3 pad 1, 3 -> 5, 7x9', B: 2, H: 7, W: 9, Cin: 3, Cout: 5, k: 3, pad: 1, bias: true },
  { name: 'dense 7x7 pad 3, 5 -> 3, 9x7, no bias', B: 1, H: 9, W: 7, Cin: 5, Cout: 3, k: 7, pad: 3 },
  { name: 'dense 4x4 stride 4 (ConvNeXt stem), 3 -> 13', B: 1, H: 12, W: 8, Cin: 3, Cout: 13, k: 4, stride: 4, bias: true },
  { name: 'dense 2x2 stride 2 (ConvNeXt downsample), 13 -> 5', B: 2, H: 6, W: 10, Cin: 13, Cout: 5, k: 2, stride: 2, bias: true },
  { name: 'dense 7x7 stride 2 pad 3 (ResNet stem), 3 -> 8, 9x11', B: 1, H: 9, W: 11, Cin: 3, Cout: 8, k: 7, stride: 2, pad: 3 },
  { name: 'dense 1x1 stride 2 (ResNet downsample), 5 -> 13, 7x9', B: 2, H: 7, W: 9, Cin: 5, Cout: 13, k: 1, stride: 2 },
  { name: 'dense 3x3 stride 2 pad 1, 13 -> 5, 7x9', B: 1, H: 7, W: 9, Cin: 13, Cout: 5, k: 3, stride: 2, pad: 1, bias: true },
  { name: 'dense 3x3 groups 2, 6 -> 10', B: 1, H: 5, W: 7, Cin: 6, Cout: 10, k: 3, pad: 1, groups: 2, bias: true },
  { name: 'dense 3x3 stride 2 groups 2, 4 -> 6', B: 2, H: 5, W: 6, Cin: 4, Cout: 6, k: 3, stride: 2, pad: 1, groups: 2 },
  { name: 'dense 3x3, several tiles in M, N and K: 20 -> 70, 9x9', B: 1, H: 9, W: 9, Cin: 20, Cout: 70, k: 3, pad: 1, bias: true },
  {
    name: 'sparse 3x3 pad 1, 5 -> 13, 12x12, images some/none/all',
    B: 3, H: 12, W: 12, Cin: 5, Cout: 13, k: 3, pad: 1, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'none', 'all'] },
  },
  {
    name: 'sparse 7x7 pad 3 (wider than a 4x4 patch), 3 -> 5',
    B: 2, H: 12, W: 12, Cin: 3, Cout: 5, k: 7, pad: 3,
    mask: { h: 3, w: 3, images: ['some', 'some'] },
  },
  {
    name: 'sparse 1x1 (pointwise), 13 -> 5',
    B: 3, H: 12, W: 12, Cin: 13, Cout: 5, k: 1, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'none', 'all'] },
  },
  {
    name: 'sparse 3x3 stride 2 pad 1, 12x12 -> 6x6 patch mask',
    B: 3, H: 12, W: 12, Cin: 5, Cout: 6, k: 3, stride: 2, pad: 1, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'none', 'all'] },
  },
  {
    name: 'sparse 2x2 stride 2, 12x12 -> 6x6',
    B: 2, H: 12, W: 12, Cin: 6, Cout: 3, k: 2, stride: 2,
    mask: { h: 3, w: 3, images: ['some', 'all'] },
  },
  {
    name: 'sparse 1x1 stride 2, 12x12 -> 6x6, groups 2',
    B: 2, H: 12, W: 12, Cin: 6, Cout: 4, k: 1, stride: 2, groups: 2, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'none'] },
  },
  {
    name: 'sparse 4x4 stride 4, 12x12 -> 3x3 (one site per patch)',
    B: 2, H: 12, W: 12, Cin: 3, Cout: 5, k: 4, stride: 4, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'all'] },
  },
  // Channels per group a multiple of 4: the forward (Cin) and input-gradient (Cout) GEMMs
  // gather 4 channels per load (vec4).
  { name: 'dense 3x3 pad 1, 8 -> 12, vec4 gather', B: 2, H: 5, W: 7, Cin: 8, Cout: 12, k: 3, pad: 1, bias: true },
  { name: 'dense 3x3 groups 2, 8 -> 6 (4 channels per group)', B: 1, H: 6, W: 5, Cin: 8, Cout: 6, k: 3, pad: 1, groups: 2 },
  { name: 'dense 3x3 stride 2 pad 1, 12 -> 8, vec4 gather', B: 1, H: 7, W: 9, Cin: 12, Cout: 8, k: 3, stride: 2, pad: 1 },
  // Stride 1 with pad != (k-1)/2: the flipped input-gradient conv pads by k-1-pad = 2 and 3.
  { name: 'dense 3x3 pad 0 (valid), 4 -> 8', B: 1, H: 6, W: 7, Cin: 4, Cout: 8, k: 3 },
  { name: 'dense 5x5 pad 1, 5 -> 4', B: 2, H: 7, W: 6, Cin: 5, Cout: 4, k: 5, pad: 1, bias: true },
  {
    name: 'sparse 3x3 stride 2 pad 1, 6 -> 8 (vec4 gather of dy in dx)',
    B: 2, H: 12, W: 12, Cin: 6, Cout: 8, k: 3, stride: 2, pad: 1,
    mask: { h: 3, w: 3, images: ['some', 'all'] },
  },
  {
    name: 'sparse 3x3 pad 1, 8 -> 12, vec4 gather',
    B: 2, H: 12, W: 12, Cin: 8, Cout: 12, k: 3, pad: 1, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'all'] },
  },
];

describe('conv2d on the GPU vs the reference', () => {
  const getCtx = useContext();

  for (const tc of cases) {
    it(tc.name, async () => {
      await checkCase(getCtx(), tc);
    });
  }
  // Every variant on the cases whose path it changes (stride 1 or 4-channel groups); the
  // block above ran the defaults (both on).
  for (const { label: name, config: v } of SWITCH_CONFIGS) {
    const perGroup = (c: Case, n: number) => (n / (c.groups ?? 1)) % 4 === 0;
    // A case whose path the setting changes against the defaults: the flip (off here) acts on
    // stride-1 convs with k > 1, the vec4 gather (off here) on 4-channel groups.
    const flipped = (c: Case) => (c.stride ?? 1) === 1 && c.k > 1;
    const vec4 = (c: Case) => perGroup(c, c.Cin) || perGroup(c, c.Cout);
    const changed = (c: Case) => (v.flip === false && flipped(c)) || (v.vec4 === false && vec4(c));
    for (const tc of cases.filter(changed)) {
      it(`${tc.name} [${name}]`, () => withConvConfig(getCtx().gpu, v, () => checkCase(getCtx(), tc)));
    }
  }

  // The auto-tune's candidate configurations (src/ops/autotune.ts), forced on every conv: each
  // override value (RB 8, forced 32/64 tiles, small split-K chunks, the switches off) on the
  // cases with several tiles, sparse and strided paths, groups and vec4 channels.
  const forcedCases = cases.filter((c) =>
    /several tiles|3x3 stride 2 groups 2|sparse 3x3 pad 1, 8 -> 12|sparse 3x3 stride 2 pad 1, 6 -> 8|7x7 pad 3, 5 -> 3/.test(c.name),
  );
  itUnderForcedConfigs(() => getCtx().gpu, forcedCases, (tc) => checkCase(getCtx(), tc));

  // The same cases with f16 activations, under the defaults, the switches and every forced
  // configuration (each gathers and stores activations through a different path).
  for (const tc of cases) {
    it(`${tc.name} [f16]`, async (t) => {
      needF16(t, getCtx());
      await checkCase(getCtx(), tc, 'f16');
    });
  }
  for (const { label, config } of SWITCH_CONFIGS) {
    for (const tc of forcedCases) {
      it(`${tc.name} [f16, ${label}]`, (t) => {
        needF16(t, getCtx());
        return withConvConfig(getCtx().gpu, config, () => checkCase(getCtx(), tc, 'f16'));
      });
    }
  }
  itUnderForcedConfigs(() => getCtx().gpu, forcedCases, async (tc, t) => {
    needF16(t, getCtx());
    await checkCase(getCtx(), tc, 'f16');
  }, ', f16');

  async function checkCase(ctx: ReturnType<typeof getCtx>, tc: Case, dtype: DType = 'f32'): Promise<void> {
    const rng = new Rng(tc.Cin * 100 + tc.Cout * 7 + tc.k);
    const groups = tc.groups ?? 1;
    const g = {
      B: tc.B, H: tc.H, W: tc.W, Cin: tc.Cin, Cout: tc.Cout, kh: tc.k, kw: tc.k,
      stride: tc.stride ?? 1, pad: tc.pad ?? 0, groups,
    };
    const { Ho, Wo } = ref.convOutSize(g);
    const inL = tc.mask
      ? patchMask(rng, tc.mask.h, tc.mask.w, tc.mask.images).layoutAt(tc.H, tc.W)
      : SiteLayout.dense(tc.B, tc.H, tc.W);
    const outL = inL.resized(Ho, Wo);
    const stored = dtype === 'f16' ? asF16 : f32;
    const xs = stored(rng.array(inL.rows * tc.Cin));
    const ws = f32(rng.array((tc.Cout * tc.Cin * tc.k * tc.k) / groups));
    const bs = tc.bias ? f32(rng.array(tc.Cout)) : null;
    const gys = stored(rng.array(outL.rows * tc.Cout));

    const x = ctx.fromArray(xs, [inL.rows, tc.Cin], inL, dtype);
    x.requiresGrad = true;
    const w = ctx.parameter(`w ${tc.name}`, [tc.Cout, tc.Cin / groups, tc.k, tc.k], ws);
    const b = bs ? ctx.parameter(`b ${tc.name}`, [tc.Cout], bs) : null;
    const y = conv2d(x, w, b, { stride: g.stride, padding: g.pad, groups });
    expect(y.shape).toEqual([outL.rows, tc.Cout]);
    expect(y.layout!.equals(outL)).toBe(true);
    expect(y.dtype).toBe(dtype);

    // The official simulation: zero-fill the input, dense conv, keep the active output rows;
    // backward: dense backward of the masked output gradient, keep the active input rows.
    const xDense = scatter(xs, inL, tc.Cin);
    const taps = tc.k * tc.k;
    const yRef = gather(ref.convForward(xDense, ws, bs, g), outL, tc.Cout);
    expectClose(await y.read(), yRef, activationTol(dtype, (taps * tc.Cin) / groups + 1), 'forward');

    const grads = ctx.backward(y, ctx.fromArray(gys, [outL.rows, tc.Cout], outL, dtype));
    const r = ref.convBackward(xDense, ws, scatter(gys, outL, tc.Cout), g);
    const dx = grads.get(x.id)!;
    expect(dx.dtype).toBe(dtype);
    expectClose(await dx.read(), gather(r.dx, inL, tc.Cin), activationTol(dtype, (taps * tc.Cout) / groups), 'dx');
    expect(w.grad!.dtype).toBe('f32');
    expectClose(await w.grad!.read(), r.dw, sumTol(outL.rows), 'dw');
    if (b) expectClose(await b.grad!.read(), r.db, sumTol(outL.rows), 'db');
    ctx.dispose();
  }

  it('sparse equals dense conv on the zero-filled input, then gather (GPU vs GPU)', async () => {
    const ctx = getCtx();
    const rng = new Rng(5);
    const [Cin, Cout] = [5, 7];
    const inL = patchMask(rng, 3, 3, ['some', 'none', 'all']).layoutAt(12, 12);
    const x = ctx.fromArray(f32(rng.array(inL.rows * Cin)), [inL.rows, Cin], inL);
    const b = ctx.fromArray(f32(rng.array(Cout)), [Cout]);
    for (const [k, stride, pad] of [[3, 1, 1], [3, 2, 1], [2, 2, 0]] as const) {
      const w = ctx.fromArray(f32(rng.array(Cout * Cin * k * k)), [Cout, Cin, k, k]);
      const sparse = conv2d(x, w, b, { stride, padding: pad });
      const dense = conv2d(scatterToDense(x), w, b, { stride, padding: pad });
      const viaDense = gatherSites(dense, sparse.layout!);
      // The same taps in the same order; the dense run only adds exact zeros for inactive
      // inputs, so the results agree to the last bit up to FMA contraction.
      expectClose(await sparse.read(), await viaDense.read(), { atol: 1e-6, rtol: 1e-6 }, `k${k} s${stride}`);
    }
    ctx.dispose();
  });

  it('a layout with no active rows gives empty outputs and zero weight gradients', async () => {
    const ctx = getCtx();
    const rng = new Rng(6);
    const [Cin, Cout] = [3, 5];
    const layout = patchMask(rng, 2, 2, ['none', 'none']).layoutAt(4, 4);
    expect(layout.rows).toBe(0);
    const x = ctx.fromArray([], [0, Cin], layout);
    x.requiresGrad = true;
    const w = ctx.parameter('w-empty', [Cout, Cin, 3, 3], f32(rng.array(Cout * Cin * 9)));
    const b = ctx.parameter('b-empty', [Cout], f32(rng.array(Cout)));
    const y = conv2d(x, w, b, { padding: 1 });
    expect(y.shape).toEqual([0, Cout]);
    ctx.backward(y, ctx.zeros([0, Cout], layout));
    expect(Array.from(await w.grad!.read())).toEqual(new Array(Cout * Cin * 9).fill(0));
    expect(Array.from(await b.grad!.read())).toEqual(new Array(Cout).fill(0));
    ctx.dispose();
  });

  it('sparse work scales with the active rows (dispatched workgroups)', async () => {
    const ctx = getCtx();
    const rng = new Rng(8);
    // 2 images, 5x5 patches of 8x8 sites on a 40x40 grid, exactly 10 of 25 patches visible
    // (40 %): 1280 of 3200 rows, multiples of the 64-row M tile and of the 128-row split-K
    // chunk, so the GEMM passes scale exactly by 0.4.
    const visible = new Uint8Array(50);
    visible.set(rng.choose(25, 10), 0);
    visible.set(rng.choose(25, 10), 25);
    const partial = new PatchMask(2, 5, 5, visible).layoutAt(40, 40);
    const full = new PatchMask(2, 5, 5, new Uint8Array(50).fill(1)).layoutAt(40, 40);
    expect(partial.rows / full.rows).toBe(0.4);
    const C = 4;
    const w = ctx.parameter('w-work', [C, C, 3, 3], f32(rng.array(C * C * 9)));
    const b = ctx.parameter('b-work', [C], f32(rng.array(C)));
    const count = (layout: SiteLayout) => {
      const stats = ctx.gpu.stats;
      const x = ctx.fromArray(f32(rng.array(layout.rows * C)), [layout.rows, C], layout);
      x.requiresGrad = true;
      const before = stats.workgroups;
      const y = conv2d(x, w, b, { padding: 1 });
      const fwd = stats.workgroups - before;
      const gy = ctx.fromArray(f32(rng.array(layout.rows * C)), [layout.rows, C], layout);
      const mid = stats.workgroups;
      ctx.backward(y, gy);
      return { fwd, bwd: stats.workgroups - mid };
    };
    const a = count(partial);
    const f = count(full);
    // Fixed per-call passes (weight packing; the split-K and bias reductions: one workgroup
    // each here) lift the ratios slightly above the 0.4 of the GEMM passes: forward 21/51,
    // backward 42/102. A dispatch over the whole grid would give 1.0.
    expect(a.fwd / f.fwd).toBeGreaterThanOrEqual(0.4);
    expect(a.fwd / f.fwd).toBeLessThanOrEqual(0.42);
    expect(a.bwd / f.bwd).toBeGreaterThanOrEqual(0.4);
    expect(a.bwd / f.bwd).toBeLessThanOrEqual(0.42);
    await ctx.gpu.sync();
    ctx.dispose();
  });

  it('mid-graph: conv -> scale -> used twice -> sum, gradients vs the reference', async () => {
    const ctx = getCtx();
    const rng = new Rng(9);
    const g = { B: 1, H: 5, W: 6, Cin: 3, Cout: 4, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1 };
    const inL = SiteLayout.dense(g.B, g.H, g.W);
    const xs = f32(rng.array(inL.rows * g.Cin));
    const ws = f32(rng.array(g.Cout * g.Cin * 9));
    const bs = f32(rng.array(g.Cout));
    const x = ctx.fromArray(xs, [inL.rows, g.Cin], inL);
    x.requiresGrad = true;
    const w = ctx.parameter('w-mid', [g.Cout, g.Cin, 3, 3], ws);
    const b = ctx.parameter('b-mid', [g.Cout], bs);
    // L = sum(z*z + z), z = 0.5 * conv(x): dL/dy = 0.5 * (2z + 1).
    const z = ew.scale(conv2d(x, w, b, { stride: 2, padding: 1 }), 0.5);
    const loss = ew.sum(ew.add(ew.mul(z, z), z));
    const grads = ctx.backward(loss);

    const lossOf = (xv: Float64Array, wv: Float64Array, bv: Float64Array) =>
      ref.convForward(xv, wv, bv, g).reduce((s, y) => s + 0.25 * y * y + 0.5 * y, 0);
    const yRef = ref.convForward(xs, ws, bs, g);
    expectClose(await loss.read(), [lossOf(xs, ws, bs)], { atol: 1e-4, rtol: 1e-5 }, 'loss');
    const gy = yRef.map((y) => 0.5 * y + 0.5);
    const r = ref.convBackward(xs, ws, gy, g);
    // The reference's gradient of this composite is itself checked by finite differences.
    expectGradientMatches((p) => lossOf(p, ws, bs), xs, r.dx, 'dx of the composite', { atol: 1e-5, rtol: 1e-5 });
    expectClose(await grads.get(x.id)!.read(), r.dx, sumTol(60), 'dx');
    expectClose(await w.grad!.read(), r.dw, sumTol(60), 'dw');
    expectClose(await b.grad!.read(), r.db, sumTol(60), 'db');
    ctx.dispose();
  });

  it('skips the gradients nobody needs', async () => {
    const ctx = getCtx();
    const rng = new Rng(10);
    const L = SiteLayout.dense(1, 4, 4);
    const x = ctx.fromArray(f32(rng.array(16 * 3)), [16, 3], L);
    const w = ctx.fromArray(f32(rng.array(2 * 3 * 9)), [2, 3, 3, 3]);
    const b = ctx.parameter('b-only', [2], f32(rng.array(2)));
    const y = conv2d(x, w, b, { padding: 1 });
    const before = ctx.gpu.stats.dispatches;
    const grads = ctx.backward(y, ctx.fromArray(f32(rng.array(32)), [16, 2], L));
    // Only the bias needs a gradient: its column partials and their sum, nothing else.
    expect(ctx.gpu.stats.dispatches - before).toBe(2);
    expect(grads.has(x.id)).toBe(false);
    expect(b.grad).not.toBeNull();
    ctx.dispose();
  });
});
