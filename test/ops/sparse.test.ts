import { describe, expect, it } from 'vitest';
import { gatherSites, maskFill, scatterToDense } from '../../src/ops/sparse.ts';
import { depthwiseConv2d } from '../../src/ops/depthwise.ts';
import { channelScale } from '../../src/ops/channel.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { nchwToRows, rowsToNchw } from '../../src/tensor/convert.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, numericGrad, projection } from '../helpers/finite-diff.ts';
import { patchMask } from '../helpers/masks.ts';
import * as ref from '../reference/sparse.ts';
import * as dwRef from '../reference/depthwise.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// Copies are exact; the mask token's gradient sums gy over n inactive sites (chunked), with
// typical f32 error ~sqrt(n) * 6e-8 * n/2.
const EXACT = { atol: 0, rtol: 0 };
const reduceTol = (n: number) => ({ atol: 1e-6 * Math.max(n, 10), rtol: 1e-5 });

describe('mask fill reference (finite differences)', () => {
  it('dx and dtoken', () => {
    const rng = new Rng(51);
    const C = 3;
    const layout = patchMask(rng, 2, 2, ['some', 'none']).layoutAt(4, 4);
    const x = rng.array(layout.rows * C);
    const token = rng.array(C);
    const proj = projection(layout.gridSize * C);
    const { dx, dtoken } = ref.maskFillBackward(proj, layout, C);
    expectGradientMatches((p) => dot(ref.maskFill(p, token, layout, C), proj), x, dx, 'dx');
    expectGradientMatches((p) => dot(ref.maskFill(x, p, layout, C), proj), token, dtoken, 'dtoken');
  });
});

describe('NCHW <-> rows conversion', () => {
  it('round trip keeps active sites and zeros the rest', () => {
    const rng = new Rng(52);
    const [B, C, H, W] = [2, 3, 4, 6];
    const layout = patchMask(rng, 2, 3, ['some', 'all']).layoutAt(H, W);
    const nchw = f32(rng.array(B * C * H * W));
    const rows = nchwToRows(nchw, B, C, H, W, layout);
    expect(rows.length).toBe(layout.rows * C);
    const back = rowsToNchw(rows, C, layout);
    const rowOf = layout.rowOf;
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++)
        for (let s = 0; s < H * W; s++) {
          const i = (b * C + c) * H * W + s;
          expect(back[i]).toBe(rowOf[b * H * W + s]! >= 0 ? nchw[i] : 0);
        }
    // Dense: row (b*H + y)*W + x holds channel c at column c.
    const dense = nchwToRows(nchw, B, C, H, W, SiteLayout.dense(B, H, W));
    expect(dense[((1 * H + 2) * W + 5) * C + 1]).toBe(nchw[((1 * C + 1) * H + 2) * W + 5]);
  });
});

describe('maskFill, scatterToDense, gatherSites on the GPU', () => {
  const getCtx = useContext();

  // f16: the rows (x, gy) are rounded to f16 first, so moving them is still exact; the f32 mask
  // token is stored into an f16 map, one rounding (test/helpers/f16.ts); dtoken is an f32 sum
  // of f16 values, the f32 bound unchanged.
  for (const dtype of ['f32', 'f16'] as const) for (const [C, H, W, h, w] of [
    [3, 4, 6, 2, 3],
    [5, 8, 8, 2, 2],
    [13, 6, 6, 3, 3],
  ] as const) {
    it(`C ${C}, ${H}x${W} grid, images none/all/some${dtype === 'f16' ? ', f16' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const rng = new Rng(C * 13 + H);
      const layout = patchMask(rng, h, w, ['none', 'all', 'some']).layoutAt(H, W);
      const dense = SiteLayout.dense(3, H, W);
      const xs = stored(rng.array(layout.rows * C));
      const ts = f32(rng.array(C));
      const gys = stored(rng.array(layout.gridSize * C));
      const gyRows = stored(rng.array(layout.rows * C));

      // maskFill forward and backward
      const x = ctx.fromArray(xs, [layout.rows, C], layout, dtype);
      x.requiresGrad = true;
      const token = ctx.parameter('token', [C], ts);
      const filled = maskFill(x, token);
      expect(filled.layout!.equals(dense)).toBe(true);
      expect(filled.dtype).toBe(dtype);
      expectClose(await filled.read(), ref.maskFill(xs, ts, layout, C), dtype === 'f16' ? storedAsF16(EXACT) : EXACT, 'maskFill');
      let grads = ctx.backward(filled, ctx.fromArray(gys, [layout.gridSize, C], dense, dtype));
      const r = ref.maskFillBackward(gys, layout, C);
      expectClose(await grads.get(x.id)!.read(), r.dx, EXACT, 'maskFill dx');
      expectClose(await token.grad!.read(), r.dtoken, reduceTol(layout.gridSize - layout.rows), 'dtoken');

      // scatterToDense forward and backward (gather)
      const scattered = scatterToDense(x);
      expectClose(await scattered.read(), ref.scatter(xs, layout, C), EXACT, 'scatterToDense');
      grads = ctx.backward(scattered, ctx.fromArray(gys, [layout.gridSize, C], dense, dtype));
      expectClose(await grads.get(x.id)!.read(), ref.gather(gys, layout, C), EXACT, 'scatterToDense dx');

      // gatherSites forward and backward (scatter with zeros)
      const d = ctx.fromArray(gys, [layout.gridSize, C], dense, dtype);
      d.requiresGrad = true;
      const gathered = gatherSites(d, layout);
      expect(gathered.layout).toBe(layout);
      expectClose(await gathered.read(), ref.gather(gys, layout, C), EXACT, 'gatherSites');
      grads = ctx.backward(gathered, ctx.fromArray(gyRows, [layout.rows, C], layout, dtype));
      expectClose(await grads.get(d.id)!.read(), ref.scatter(gyRows, layout, C), EXACT, 'gatherSites dx');
      ctx.dispose();
    });
  }

  it('maskFill of a dense map copies it, and the token gets a zero gradient', async () => {
    const ctx = getCtx();
    const C = 5;
    const layout = SiteLayout.dense(1, 3, 3);
    const xs = f32(new Rng(53).array(9 * C));
    const token = ctx.parameter('token-dense', [C], [1, 2, 3, 4, 5]);
    const y = maskFill(ctx.fromArray(xs, [9, C], layout), token);
    expectClose(await y.read(), xs, EXACT, 'copy');
    ctx.backward(y, ctx.fromArray(f32(new Rng(54).array(9 * C)), [9, C], layout));
    expect(Array.from(await token.grad!.read())).toEqual([0, 0, 0, 0, 0]);
    ctx.dispose();
  });

  it('gatherSites from one sparse layout to another on the same grid', async () => {
    const ctx = getCtx();
    const rng = new Rng(55);
    const C = 3;
    const a = patchMask(rng, 2, 2, ['some', 'all']).layoutAt(4, 4);
    const b = patchMask(rng, 2, 2, ['all', 'some']).layoutAt(4, 4);
    const xs = f32(rng.array(a.rows * C));
    const y = gatherSites(ctx.fromArray(xs, [a.rows, C], a), b);
    // Via the dense grid: a's rows scattered with zeros, then b's sites gathered.
    expectClose(await y.read(), ref.gather(ref.scatter(xs, a, C), b, C), EXACT, 'sparse -> sparse');
    ctx.dispose();
  });
});

describe('mid-graph: maskFill -> depthwise -> channelScale -> weighted sum', () => {
  const getCtx = useContext();

  it('gradients of x, token, w, bias and gamma match finite differences of the float64 graph', async () => {
    const ctx = getCtx();
    const rng = new Rng(61);
    const [C, K, H, W] = [5, 3, 4, 4];
    const layout = patchMask(rng, 2, 2, ['some', 'none']).layoutAt(H, W);
    const g = { B: 2, H, W, C, K, stride: 1, pad: 1 };
    const n = layout.gridSize * C;
    const xs = f32(rng.array(layout.rows * C));
    const ts = f32(rng.array(C));
    const ws = f32(rng.array(C * K * K));
    const bs = f32(rng.array(C));
    const gs = f32(rng.array(C, 0.5, 1.5));
    const proj = f32(projection(n));
    const loss = (x: Float64Array, t: Float64Array, w: Float64Array, b: Float64Array, gm: Float64Array) =>
      dot(ref.channelScale(dwRef.depthwiseForward(ref.maskFill(x, t, layout, C), w, b, g), gm), proj);

    const x = ctx.fromArray(xs, [layout.rows, C], layout);
    x.requiresGrad = true;
    const token = ctx.parameter('mask_token', [C], ts);
    const w = ctx.parameter('dwconv.weight', [C, 1, K, K], ws);
    const b = ctx.parameter('dwconv.bias', [C], bs);
    const gamma = ctx.parameter('gamma', [C], gs);
    const dense = SiteLayout.dense(2, H, W);
    const y = channelScale(depthwiseConv2d(maskFill(x, token), w, b), gamma);
    const L = ew.sum(ew.mul(y, ctx.fromArray(proj, [layout.gridSize, C], dense)));
    expectClose(await L.read(), [loss(xs, ts, ws, bs, gs)], { atol: 1e-5, rtol: 1e-5 }, 'loss');
    const grads = ctx.backward(L);

    // Float64 finite differences of the reference graph; the GPU's f32 gradients sum up to a
    // few hundred terms of size ~1, so they agree to ~1e-5.
    const GRAD = { atol: 3e-5, rtol: 1e-4 };
    const fd = (f: (p: Float64Array) => number, at: Float64Array) => numericGrad(f, at);
    expectClose(await grads.get(x.id)!.read(), fd((p) => loss(p, ts, ws, bs, gs), xs), GRAD, 'dx');
    expectClose(await token.grad!.read(), fd((p) => loss(xs, p, ws, bs, gs), ts), GRAD, 'dtoken');
    expectClose(await w.grad!.read(), fd((p) => loss(xs, ts, p, bs, gs), ws), GRAD, 'dw');
    expectClose(await b.grad!.read(), fd((p) => loss(xs, ts, ws, p, gs), bs), GRAD, 'db');
    expectClose(await gamma.grad!.read(), fd((p) => loss(xs, ts, ws, bs, p), gs), GRAD, 'dgamma');
    ctx.dispose();
  });
});
