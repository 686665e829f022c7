import { describe, expect, it } from 'vitest';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/elementwise.ts';

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
