import { describe, expect, it } from 'vitest';
import { depthwiseConv2d } from '../../src/ops/depthwise.ts';
import { gatherSites, scatterToDense } from '../../src/ops/sparse.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import { patchMask, type ImageMask } from '../helpers/masks.ts';
import * as ref from '../reference/depthwise.ts';
import { gather, scatter } from '../reference/sparse.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// Inputs are uniform in [-1, 1]. A forward output sums <= K*K + 1 = 50 terms: f32 rounding of
// such a sum is ~sqrt(50) * 6e-8 * sum|terms| <~ 1e-5 (sum|terms| <~ 25).
const FWD = { atol: 2e-5, rtol: 1e-5 };
// dx sums <= 49 terms like the forward. dw and db sum one term per output row (n rows, in
// chunks, then chunk partials): ~sqrt(n) * 6e-8 * n/4 in typical error; 1e-6 * n leaves room
// for the worst rows at the sizes used here (n <= 200).
const DX = { atol: 2e-5, rtol: 1e-5 };
const reduceTol = (n: number) => ({ atol: 1e-6 * Math.max(n, 10), rtol: 1e-5 });
// f16 activations: x and dy rounded to f16 before the reference sees them; each product with an
// f32 weight and every sum run in f32 (the bounds above), y and dx stored as f16 once (one f16
// ulp, test/helpers/f16.ts). dw and db are f32 sums of exact f16 x f16 products: unchanged.

describe('depthwise reference (finite differences)', () => {
  for (const g of [
    { B: 2, H: 5, W: 4, C: 3, K: 3, stride: 1, pad: 1 },
    { B: 1, H: 6, W: 7, C: 2, K: 3, stride: 2, pad: 1 },
    { B: 1, H: 4, W: 5, C: 2, K: 5, stride: 1, pad: 2 },
  ]) {
    it(`dx, dw, db for ${JSON.stringify(g)}`, () => {
      const rng = new Rng(11);
      const x = rng.array(g.B * g.H * g.W * g.C);
      const w = rng.array(g.C * g.K * g.K);
      const b = rng.array(g.C);
      const { Ho, Wo } = ref.outSize(g);
      const proj = projection(g.B * Ho * Wo * g.C);
      const { dx, dw, db } = ref.depthwiseBackward(x, w, proj, g);
      expectGradientMatches((p) => dot(ref.depthwiseForward(p, w, b, g), proj), x, dx, 'dx');
      expectGradientMatches((p) => dot(ref.depthwiseForward(x, p, b, g), proj), w, dw, 'dw');
      expectGradientMatches((p) => dot(ref.depthwiseForward(x, w, p, g), proj), b, db, 'db');
    });
  }
});

interface Case {
  name: string;
  B: number;
  H: number;
  W: number;
  C: number;
  K: number;
  stride?: number;
  bias?: boolean;
  /** Sparse: patch grid h x w and per-image kinds; absent = dense. */
  mask?: { h: number; w: number; images: ImageMask[] };
}

const cases: Case[] = [
  { name: 'dense, batch 1, C 3, odd 7x9, 7x7', B: 1, H: 7, W: 9, C: 3, K: 7, bias: true },
  { name: 'dense, C 13, 6x5, 3x3, no bias', B: 2, H: 6, W: 5, C: 13, K: 3, bias: false },
  { name: 'dense, C 8, 9x7, 3x3 stride 2', B: 1, H: 9, W: 7, C: 8, K: 3, stride: 2, bias: true },
  {
    name: 'sparse, C 5, 8x8, 7x7, images none/all/some',
    B: 3, H: 8, W: 8, C: 5, K: 7, bias: true,
    mask: { h: 2, w: 2, images: ['none', 'all', 'some'] },
  },
  {
    name: 'sparse, C 13, 6x6 (2x2 tiles), 7x7 wider than the tiles',
    B: 2, H: 6, W: 6, C: 13, K: 7, bias: true,
    mask: { h: 3, w: 3, images: ['some', 'some'] },
  },
  {
    name: 'sparse, C 4, 8x8 -> 4x4, 3x3 stride 2',
    B: 2, H: 8, W: 8, C: 4, K: 3, stride: 2, bias: false,
    mask: { h: 2, w: 2, images: ['some', 'all'] },
  },
];

describe('depthwiseConv2d on the GPU vs the reference', () => {
  const getCtx = useContext();

  for (const dtype of ['f32', 'f16'] as const) for (const tc of cases) {
    it(`${tc.name}${dtype === 'f16' ? ' [f16]' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const act = (tol: { atol: number; rtol: number }) => (dtype === 'f16' ? storedAsF16(tol) : tol);
      const rng = new Rng(tc.C * 100 + tc.H);
      const stride = tc.stride ?? 1;
      const g = { B: tc.B, H: tc.H, W: tc.W, C: tc.C, K: tc.K, stride, pad: tc.K >> 1 };
      const { Ho, Wo } = ref.outSize(g);
      const inL = tc.mask
        ? patchMask(rng, tc.mask.h, tc.mask.w, tc.mask.images).layoutAt(tc.H, tc.W)
        : SiteLayout.dense(tc.B, tc.H, tc.W);
      const outL = inL.resized(Ho, Wo);
      const xs = stored(rng.array(inL.rows * tc.C));
      const ws = f32(rng.array(tc.C * tc.K * tc.K));
      const bs = tc.bias ? f32(rng.array(tc.C)) : null;
      const gys = stored(rng.array(outL.rows * tc.C));

      const x = ctx.fromArray(xs, [inL.rows, tc.C], inL, dtype);
      x.requiresGrad = true;
      const w = ctx.parameter(`w${tc.name}`, [tc.C, 1, tc.K, tc.K], ws);
      const b = bs ? ctx.parameter(`b${tc.name}`, [tc.C], bs) : null;
      const y = depthwiseConv2d(x, w, b, { stride });
      expect(y.layout!.equals(outL)).toBe(true);
      expect(y.dtype).toBe(dtype);

      // The official simulation: zero-fill, dense conv, keep the active output rows.
      const xDense = scatter(xs, inL, tc.C);
      expectClose(await y.read(), gather(ref.depthwiseForward(xDense, ws, bs, g), outL, tc.C), act(FWD), 'forward');

      const grads = ctx.backward(y, ctx.fromArray(gys, [outL.rows, tc.C], outL, dtype));
      const r = ref.depthwiseBackward(xDense, ws, scatter(gys, outL, tc.C), g);
      expectClose(await grads.get(x.id)!.read(), gather(r.dx, inL, tc.C), act(DX), 'dx');
      expect(w.grad!.dtype).toBe('f32');
      expectClose(await w.grad!.read(), r.dw, reduceTol(outL.rows), 'dw');
      if (b) expectClose(await b.grad!.read(), r.db, reduceTol(outL.rows), 'db');
      ctx.dispose();
    });
  }

  it('sparse equals dense-on-zero-filled-input then gather, on the GPU too', async () => {
    const ctx = getCtx();
    const rng = new Rng(5);
    const C = 6;
    const layout = patchMask(rng, 2, 3, ['some', 'none', 'all']).layoutAt(6, 9);
    const x = ctx.fromArray(f32(rng.array(layout.rows * C)), [layout.rows, C], layout);
    const w = ctx.fromArray(f32(rng.array(C * 49)), [C, 1, 7, 7]);
    const b = ctx.fromArray(f32(rng.array(C)), [C]);
    const sparse = await depthwiseConv2d(x, w, b).read();
    const viaDense = await gatherSites(depthwiseConv2d(scatterToDense(x), w, b), layout).read();
    // Same taps in the same order; the dense run adds exact zeros for the inactive ones.
    expectClose(sparse, viaDense, { atol: 1e-6, rtol: 1e-6 }, 'sparse vs dense simulation');
    ctx.dispose();
  });

  it('a layout with no active rows gives empty outputs and zero weight gradients', async () => {
    const ctx = getCtx();
    const rng = new Rng(6);
    const C = 5;
    const layout = patchMask(rng, 2, 2, ['none']).layoutAt(4, 4);
    expect(layout.rows).toBe(0);
    const x = ctx.fromArray([], [0, C], layout);
    x.requiresGrad = true;
    const w = ctx.parameter('w-empty', [C, 1, 3, 3], f32(rng.array(C * 9)));
    const b = ctx.parameter('b-empty', [C], f32(rng.array(C)));
    const y = depthwiseConv2d(x, w, b);
    expect(y.shape).toEqual([0, C]);
    ctx.backward(y, ctx.zeros([0, C], layout));
    expect(Array.from(await w.grad!.read())).toEqual(new Array(C * 9).fill(0));
    expect(Array.from(await b.grad!.read())).toEqual(new Array(C).fill(0));
    ctx.dispose();
  });
});
