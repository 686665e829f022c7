import { describe, expect, it } from 'vitest';
import { linear } from '../../src/ops/matmul.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import { patchMask } from '../helpers/masks.ts';
import * as ref from '../reference/matmul.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// Each value is an f32 sum of n products with |term| <= 1 (n = Cin + 1 forward, Cout for dx,
// rows for dw and db): rounding error ~3e-8 * n, so 1e-7 * n + 1e-6 is a ~3x margin; one
// wrong term (~0.1-1) is far outside it.
const sumTol = (n: number) => ({ atol: 1e-7 * n + 1e-6, rtol: 1e-5 });
// f16 activations (x, y, dy, dx): inputs rounded to f16 before the reference sees them, the
// sums in f32 (the bound above), y and dx stored as f16 once (one f16 ulp, test/helpers/f16.ts);
// dw and db are f32 results, the f32 bound unchanged.

describe('linear reference (finite differences)', () => {
  it('dx, dw, db', () => {
    const rng = new Rng(2);
    const [N, Cin, Cout] = [3, 4, 5];
    const x = rng.array(N * Cin);
    const w = rng.array(Cout * Cin);
    const b = rng.array(Cout);
    const proj = projection(N * Cout);
    const { dx, dw, db } = ref.linearBackward(x, w, proj, N, Cin, Cout);
    expectGradientMatches((p) => dot(ref.linearForward(p, w, b, N, Cin, Cout), proj), x, dx, 'dx');
    expectGradientMatches((p) => dot(ref.linearForward(x, p, b, N, Cin, Cout), proj), w, dw, 'dw');
    expectGradientMatches((p) => dot(ref.linearForward(x, w, p, N, Cin, Cout), proj), b, db, 'db');
  });
});

describe('linear on the GPU vs the reference', () => {
  const getCtx = useContext();

  for (const [N, Cin, Cout, bias] of [
    [1, 3, 5, true],
    [7, 13, 3, false],
    [37, 5, 13, true],
    [130, 70, 90, true], // several tiles along M, N and K (16-wide steps)
    [65, 33, 31, true], // one past / one short of the 32 and 64 tile edges
    [37, 12, 8, true], // Cin, Cout % 4 == 0: vec4 gather in the forward and in dx
    [130, 68, 72, false], // vec4 gather over several tiles
  ] as const) for (const dtype of ['f32', 'f16'] as const) {
    it(`N ${N}, ${Cin} -> ${Cout}${bias ? '' : ', no bias'}${dtype === 'f16' ? ' [f16]' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const act = (tol: { atol: number; rtol: number }) => (dtype === 'f16' ? storedAsF16(tol) : tol);
      const rng = new Rng(N * 7 + Cin);
      const xs = stored(rng.array(N * Cin));
      const ws = f32(rng.array(Cout * Cin));
      const bs = bias ? f32(rng.array(Cout)) : null;
      const gys = stored(rng.array(N * Cout));
      const x = ctx.fromArray(xs, [N, Cin], null, dtype);
      x.requiresGrad = true;
      const w = ctx.parameter(`w${N}`, [Cout, Cin], ws);
      const b = bs ? ctx.parameter(`b${N}`, [Cout], bs) : null;
      const y = linear(x, w, b);
      expect(y.shape).toEqual([N, Cout]);
      expect(y.dtype).toBe(dtype);
      expectClose(await y.read(), ref.linearForward(xs, ws, bs, N, Cin, Cout), act(sumTol(Cin + 1)), 'forward');
      const grads = ctx.backward(y, ctx.fromArray(gys, [N, Cout], null, dtype));
      const r = ref.linearBackward(xs, ws, gys, N, Cin, Cout);
      expectClose(await grads.get(x.id)!.read(), r.dx, act(sumTol(Cout)), 'dx');
      expect(w.grad!.shape).toEqual([Cout, Cin]);
      expectClose(await w.grad!.read(), r.dw, sumTol(N), 'dw');
      if (b) expectClose(await b.grad!.read(), r.db, sumTol(N), 'db');
      ctx.dispose();
    });
  }

  it('keeps the layout of a sparse feature map (ConvNeXt pwconv) and handles zero rows', async () => {
    const ctx = getCtx();
    const rng = new Rng(3);
    const [Cin, Cout] = [5, 6];
    const w = ctx.parameter('w-sparse', [Cout, Cin], f32(rng.array(Cout * Cin)));
    const b = ctx.parameter('b-sparse', [Cout], f32(rng.array(Cout)));
    for (const images of [['some', 'all'], ['none']] as const) {
      const layout = patchMask(rng, 2, 2, [...images]).layoutAt(4, 4);
      const xs = f32(rng.array(layout.rows * Cin));
      const x = ctx.fromArray(xs, [layout.rows, Cin], layout);
      const y = linear(x, w, b);
      expect(y.layout).toBe(layout);
      expectClose(await y.read(), ref.linearForward(xs, await w.read(), await b.read(), layout.rows, Cin, Cout), sumTol(Cin + 1), 'forward');
    }
    ctx.dispose();
  });

  it('mid-graph: linear -> scale -> used twice -> sum', async () => {
    const ctx = getCtx();
    const rng = new Rng(4);
    const [N, Cin, Cout] = [6, 5, 3];
    const xs = f32(rng.array(N * Cin));
    const ws = f32(rng.array(Cout * Cin));
    const bs = f32(rng.array(Cout));
    const x = ctx.fromArray(xs, [N, Cin]);
    x.requiresGrad = true;
    const w = ctx.parameter('w-mid', [Cout, Cin], ws);
    const b = ctx.parameter('b-mid', [Cout], bs);
    // L = sum(z*z + z), z = 0.5 * linear(x): dL/dy = 0.5 * (2z + 1).
    const z = ew.scale(linear(x, w, b), 0.5);
    const grads = ctx.backward(ew.sum(ew.add(ew.mul(z, z), z)));
    const lossOf = (xv: Float64Array) =>
      ref.linearForward(xv, ws, bs, N, Cin, Cout).reduce((s, y) => s + 0.25 * y * y + 0.5 * y, 0);
    const gy = ref.linearForward(xs, ws, bs, N, Cin, Cout).map((y) => 0.5 * y + 0.5);
    const r = ref.linearBackward(xs, ws, gy, N, Cin, Cout);
    expectGradientMatches(lossOf, xs, r.dx, 'dx of the composite', { atol: 1e-5, rtol: 1e-5 });
    expectClose(await grads.get(x.id)!.read(), r.dx, sumTol(20), 'dx');
    expectClose(await w.grad!.read(), r.dw, sumTol(20), 'dw');
    expectClose(await b.grad!.read(), r.db, sumTol(20), 'db');
    ctx.dispose();
  });
});
