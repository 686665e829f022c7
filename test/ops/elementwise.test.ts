import { describe, expect, it } from 'vitest';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/elementwise.ts';
import { Context } from '../../src/tensor/context.ts';
import { supportsF16 } from '../../src/tensor/precision.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// f32 math on values of size ~1: forward within a few ulps; erf approximation adds 1.5e-7.
const FWD = { atol: 1e-6, rtol: 1e-6 };
const GRAD = { atol: 1e-6, rtol: 1e-5 };

describe('elementwise references (finite differences)', () => {
  const rng = new Rng(1);
  // Points away from the kinks of relu/relu6, where the derivative is defined by convention.
  const x = rng.array(40, -7, 7).map((v) => (Math.abs(v) < 0.05 || Math.abs(v - 6) < 0.05 ? v + 0.1 : v));
  const w = projection(40);
  for (const [name, f, g] of [
    ['relu', ref.relu, ref.reluGrad],
    ['relu6', ref.relu6, ref.relu6Grad],
    ['gelu', ref.gelu, ref.geluGrad],
  ] as const) {
    it(`${name}' matches finite differences`, () => {
      const analytic = ref.map(x, g).map((v, i) => v * w[i]!);
      expectGradientMatches((p) => dot(ref.map(p, f), w), x, analytic, name);
    });
  }
  it('erf matches known values', () => {
    expect(ref.erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(ref.erf(3)).toBeCloseTo(0.9999779095030014, 14);
    expect(ref.erf(-1.2)).toBeCloseTo(-0.9103139782296353, 14);
  });
});

describe('elementwise ops on the GPU', () => {
  const getCtx = useContext();

  for (const n of [1, 7, 256, 1000, 70_001]) {
    it(`add, mul, scale, sum on ${n} elements`, async () => {
      const ctx = getCtx();
      const rng = new Rng(n);
      const a = f32(rng.array(n));
      const b = f32(rng.array(n));
      const ta = ctx.fromArray(a, [n]);
      const tb = ctx.fromArray(b, [n]);
      expectClose(await ew.add(ta, tb).read(), a.map((v, i) => v + b[i]!), FWD, 'add');
      expectClose(await ew.mul(ta, tb).read(), a.map((v, i) => v * b[i]!), FWD, 'mul');
      expectClose(await ew.scale(ta, -2.5).read(), a.map((v) => v * -2.5), FWD, 'scale');
      const s = a.reduce((p, v) => p + v, 0);
      // Tree summation in f32: error ~ log2(n) * eps * sum|a|.
      const sumAbs = a.reduce((p, v) => p + Math.abs(v), 0);
      expectClose(await ew.sum(ta).read(), [s], { atol: 1e-6 * sumAbs, rtol: 0 }, 'sum');
      const ss = a.reduce((p, v) => p + v * v, 0);
      expectClose(await ew.sumOfSquares(ta).read(), [ss], { atol: 0, rtol: 1e-5 }, 'sumOfSquares');
      ctx.dispose();
    });
  }

  for (const [name, f, g] of [
    ['relu', ref.relu, ref.reluGrad],
    ['relu6', ref.relu6, ref.relu6Grad],
    ['gelu', ref.gelu, ref.geluGrad],
  ] as const) {
    it(`${name} forward and backward, including the kinks`, async () => {
      const ctx = getCtx();
      const rng = new Rng(3);
      const xs = f32([...rng.array(997, -8, 8), 0, 6, -0, 1e-8, 5.999999]);
      const gy = f32(rng.array(xs.length));
      const x = ctx.fromArray(xs, [xs.length]);
      x.requiresGrad = true;
      const y = ew[name](x);
      expectClose(await y.read(), ref.map(xs, f), FWD, `${name} forward`);
      const grads = ctx.backward(y, ctx.fromArray(gy, [gy.length]));
      const expected = ref.map(xs, g).map((v, i) => v * gy[i]!);
      expectClose(await grads.get(x.id)!.read(), expected, GRAD, `${name} backward`);
      ctx.dispose();
    });
  }
});

describe('elementwise ops with f16 storage', () => {
  const getCtx = useContext();

  it('a Context takes precision f16 where the adapter has shader-f16, and refuses it with the reason and the way out where not', (t) => {
    const ctx = getCtx();
    if (supportsF16(ctx.gpu)) {
      expect(new Context(ctx.gpu, { precision: 'f16' }).precision).toBe('f16');
    } else {
      // No shader-f16: the Context, and any single f16 tensor, is refused naming the adapter.
      expect(() => new Context(ctx.gpu, { precision: 'f16' })).toThrow(/shader-f16.*adapter.*--precision f32/);
      expect(() => ctx.empty([4], null, 'f16')).toThrow(/shader-f16.*--precision f32/);
      t.annotate?.('f16 refused on this adapter; the f16 kernel tests below skip');
    }
    expect(new Context(ctx.gpu, { precision: 'f32' }).precision).toBe('f32');
  });

  for (const n of [1, 7, 256, 1000, 70_001]) {
    it(`add, mul, scale, sum, sumOfSquares on ${n} f16 elements`, async (t) => {
      const ctx = getCtx();
      needF16(t, ctx);
      const rng = new Rng(n);
      const a = asF16(rng.array(n));
      const b = asF16(rng.array(n));
      const ta = ctx.fromArray(a, [n], null, 'f16');
      const tb = ctx.fromArray(b, [n], null, 'f16');
      // One f32 operation (exact for a product of f16 values, within half an f32 ulp for a
      // sum or a scale), stored as f16 once.
      const one = storedAsF16({ atol: 0, rtol: 2 ** -24 });
      const sumY = ew.add(ta, tb);
      expect(sumY.dtype).toBe('f16');
      expectClose(await sumY.read(), a.map((v, i) => v + b[i]!), one, 'add');
      expectClose(await ew.mul(ta, tb).read(), a.map((v, i) => v * b[i]!), one, 'mul');
      expectClose(await ew.scale(ta, -2.5).read(), a.map((v) => v * -2.5), one, 'scale');
      // The sums read f16 and accumulate in f32 to an f32 result: the f32 tolerances hold
      // unchanged (an f16 accumulator would miss them by ~2^-11 of the running sum).
      const total = ew.sum(ta);
      expect(total.dtype).toBe('f32');
      const sumAbs = a.reduce((p, v) => p + Math.abs(v), 0);
      expectClose(await total.read(), [a.reduce((p, v) => p + v, 0)], { atol: 1e-6 * sumAbs, rtol: 0 }, 'sum');
      // Squares of f16 values are exact in f32 (22 significant bits).
      expectClose(await ew.sumOfSquares(ta).read(), [a.reduce((p, v) => p + v * v, 0)], { atol: 0, rtol: 1e-5 }, 'sumOfSquares');
      ctx.dispose();
    });
  }

  it('backward in f16: the gradient of x*x sums two f16 terms, the gradient of a sum broadcasts an f32 seed', async (t) => {
    const ctx = getCtx();
    needF16(t, ctx);
    const rng = new Rng(11);
    const xs = asF16(rng.array(1001, -4, 4));
    const gy = asF16(rng.array(xs.length));
    const x = ctx.fromArray(xs, [xs.length], null, 'f16');
    x.requiresGrad = true;
    const y = ew.mul(x, x);
    const gx = ctx.backward(y, ctx.fromArray(gy, [gy.length], null, 'f16')).get(x.id)!;
    expect(gx.dtype).toBe('f16');
    // Each term gy*x is exact in f32 and stored as f16 (one rounding); their sum is stored
    // again (a second rounding).
    expectClose(await gx.read(), xs.map((v, i) => 2 * v * gy[i]!), storedAsF16({ atol: 0, rtol: 0 }, 2), 'd(x*x)/dx');

    const s = ew.sum(x);
    const gs = ctx.backward(s, ctx.fromArray([0.3], [1])).get(x.id)!;
    expect(gs.dtype).toBe('f16');
    // f32(0.3) stored as f16 once.
    expectClose(await gs.read(), new Float64Array(xs.length).fill(Math.fround(0.3)), storedAsF16({ atol: 0, rtol: 0 }), 'd(sum)/dx');
    ctx.dispose();
  });

  it('refuses to mix dtypes in one op', (t) => {
    const ctx = getCtx();
    needF16(t, ctx);
    const a = ctx.fromArray([1, 2, 3], [3], null, 'f16');
    const b = ctx.fromArray([1, 2, 3], [3]);
    expect(() => ew.add(a, b)).toThrow(/add: dtypes differ/);
    ctx.dispose();
  });

  for (const [name, f, g] of [
    ['relu', ref.relu, ref.reluGrad],
    ['relu6', ref.relu6, ref.relu6Grad],
    ['gelu', ref.gelu, ref.geluGrad],
  ] as const) {
    it(`${name} forward and backward in f16, including the kinks`, async (t) => {
      const ctx = getCtx();
      needF16(t, ctx);
      const rng = new Rng(3);
      // Rounded to f16, 1e-8 becomes 0 and 5.999999 becomes 6: the kinks themselves.
      const xs = asF16([...rng.array(997, -8, 8), 0, 6, -0, 1e-8, 5.999999, 2 ** -20]);
      const gy = asF16(rng.array(xs.length));
      const x = ctx.fromArray(xs, [xs.length], null, 'f16');
      x.requiresGrad = true;
      const y = ew[name](x);
      expect(y.dtype).toBe('f16');
      // The f32 kernel's own error (FWD, GRAD above) and one f16 rounding of the result.
      expectClose(await y.read(), ref.map(xs, f), storedAsF16(FWD), `${name} forward`);
      const grads = ctx.backward(y, ctx.fromArray(gy, [gy.length], null, 'f16'));
      const expected = ref.map(xs, g).map((v, i) => v * gy[i]!);
      expectClose(await grads.get(x.id)!.read(), expected, storedAsF16(GRAD), `${name} backward`);
      ctx.dispose();
    });
  }
});
