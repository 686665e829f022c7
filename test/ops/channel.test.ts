import { describe, expect, it } from 'vitest';
import { channelScale, dropPath } from '../../src/ops/channel.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import { patchMask } from '../helpers/masks.ts';
import * as ref from '../reference/sparse.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// One f32 multiply per element: exact up to one rounding (half an ulp, ~6e-8 relative).
const ONE_ROUNDING = { atol: 0, rtol: 1.2e-7 };
// dgamma sums one product per row (n rows, chunked): typical error ~sqrt(n) * 6e-8 * n/4.
const reduceTol = (n: number) => ({ atol: 1e-6 * Math.max(n, 10), rtol: 1e-5 });
// f16 activations: x and dy rounded to f16 first; the one f32 multiply, then one f16 rounding
// of the stored result (test/helpers/f16.ts). dgamma is an f32 sum of exact f16 x f16 products:
// the f32 bound unchanged.
const F16_ONE_ROUNDING = storedAsF16(ONE_ROUNDING);

describe('channel scale and drop path references (finite differences)', () => {
  it('channelScale dx and dgamma', () => {
    const rng = new Rng(31);
    const C = 3;
    const x = rng.array(7 * C);
    const gamma = rng.array(C);
    const proj = projection(x.length);
    const { dx, dgamma } = ref.channelScaleBackward(x, gamma, proj);
    expectGradientMatches((p) => dot(ref.channelScale(p, gamma), proj), x, dx, 'dx');
    expectGradientMatches((p) => dot(ref.channelScale(x, p), proj), gamma, dgamma, 'dgamma');
  });

  it('dropPath dx (the same map applied to the gradient)', () => {
    const rng = new Rng(32);
    const C = 2;
    const layout = patchMask(rng, 2, 2, ['some', 'all', 'some']).layoutAt(4, 4);
    const factor = ref.dropPathFactors([1, 0, 1], 0.25);
    const x = rng.array(layout.rows * C);
    const proj = projection(x.length);
    const dx = ref.dropPath(proj, layout, C, factor);
    expectGradientMatches((p) => dot(ref.dropPath(p, layout, C, factor), proj), x, dx, 'dx');
  });
});

describe('channelScale on the GPU', () => {
  const getCtx = useContext();

  for (const dtype of ['f32', 'f16'] as const) for (const [C, rows] of [
    [3, 1],
    [5, 37],
    [13, 300],
    [96, 70],
  ] as const) {
    it(`C ${C}, ${rows} rows: forward, dx, dgamma${dtype === 'f16' ? ', f16' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const tol = dtype === 'f16' ? F16_ONE_ROUNDING : ONE_ROUNDING;
      const rng = new Rng(C * 7 + rows);
      const layout = SiteLayout.dense(1, 1, rows);
      const xs = stored(rng.array(rows * C));
      const gs = f32(rng.array(C));
      const gys = stored(rng.array(rows * C));
      const x = ctx.fromArray(xs, [rows, C], layout, dtype);
      x.requiresGrad = true;
      const gamma = ctx.parameter('gamma', [C], gs);
      const y = channelScale(x, gamma);
      expect(y.dtype).toBe(dtype);
      expectClose(await y.read(), ref.channelScale(xs, gs), tol, 'forward');
      const grads = ctx.backward(y, ctx.fromArray(gys, [rows, C], layout, dtype));
      const r = ref.channelScaleBackward(xs, gs, gys);
      expectClose(await grads.get(x.id)!.read(), r.dx, tol, 'dx');
      expect(gamma.grad!.dtype).toBe('f32');
      expectClose(await gamma.grad!.read(), r.dgamma, reduceTol(rows), 'dgamma');
      ctx.dispose();
    });
  }

  it('zero rows: dgamma is zero', async () => {
    const ctx = getCtx();
    const layout = patchMask(new Rng(1), 1, 1, ['none']).layoutAt(2, 2);
    const x = ctx.fromArray([], [0, 5], layout);
    const gamma = ctx.parameter('gamma0', [5], [1, 2, 3, 4, 5]);
    const y = channelScale(x, gamma);
    ctx.backward(y, ctx.zeros([0, 5], layout));
    expect(Array.from(await gamma.grad!.read())).toEqual([0, 0, 0, 0, 0]);
    ctx.dispose();
  });
});

describe('dropPath on the GPU', () => {
  const getCtx = useContext();

  for (const dtype of ['f32', 'f16'] as const) for (const [name, prob, keep] of [
    ['prob 0.3, images kept/dropped/kept', 0.3, [1, 0, 1]],
    ['prob 0.05 (R50), all kept', 0.05, [1, 1, 1]],
    ['prob 1, all dropped', 1, [0, 0, 0]],
  ] as const) {
    it(`sparse rows, C 13, ${name}${dtype === 'f16' ? ', f16' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const tol = dtype === 'f16' ? F16_ONE_ROUNDING : ONE_ROUNDING;
      const rng = new Rng(41);
      const C = 13;
      const layout = patchMask(rng, 2, 2, ['some', 'all', 'none']).layoutAt(4, 4);
      const factor = ref.dropPathFactors(keep, prob);
      const xs = stored(rng.array(layout.rows * C));
      const gys = stored(rng.array(layout.rows * C));
      const x = ctx.fromArray(xs, [layout.rows, C], layout, dtype);
      x.requiresGrad = true;
      const y = dropPath(x, Uint8Array.from(keep), prob);
      expect(y.dtype).toBe(dtype);
      expectClose(await y.read(), ref.dropPath(xs, layout, C, factor), tol, 'forward');
      const grads = ctx.backward(y, ctx.fromArray(gys, [layout.rows, C], layout, dtype));
      expectClose(await grads.get(x.id)!.read(), ref.dropPath(gys, layout, C, factor), tol, 'dx');
      ctx.dispose();
    });
  }

  it('dense rows of a batch of 1, C 5, dropped', async () => {
    const ctx = getCtx();
    const layout = SiteLayout.dense(1, 3, 5);
    const xs = f32(new Rng(42).array(layout.rows * 5));
    const y = dropPath(ctx.fromArray(xs, [layout.rows, 5], layout), Uint8Array.from([0]), 0.2);
    // x * 0, as PyTorch computes it (negative x gives -0).
    expectClose(await y.read(), new Array(xs.length).fill(0), { atol: 0, rtol: 0 }, 'dropped');
    ctx.dispose();
  });

  it('a tensor without a layout is split into equal blocks per image', async () => {
    const ctx = getCtx();
    const xs = f32(new Rng(43).array(4 * 6));
    const y = dropPath(ctx.fromArray(xs, [4, 6]), Uint8Array.from([1, 0]), 0.5);
    const expected = Array.from(xs, (v, i) => (i < 12 ? v * 2 : 0));
    expectClose(await y.read(), expected, ONE_ROUNDING, 'forward');
    ctx.dispose();
  });
});
