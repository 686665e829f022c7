/**
 * LayerNorm over channels (src/ops/norm.ts, shaders/layernorm.wgsl): the float64 reference
 * checked by finite differences, then the GPU forward and backward against it for channel
 * counts from 1 to 1536 (not multiples of 4, and the 1536 of ConvNeXt's last stage), odd row
 * counts, sparse layouts, and row counts that need several passes for dgamma/dbeta.
 */
import { describe, expect, it } from 'vitest';
import { layerNorm } from '../../src/ops/norm.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Context } from '../../src/tensor/context.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { dot, expectGradientMatches, numericGrad, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/norm.ts';
import type { DType } from '../../src/tensor/precision.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

const EPS = 1e-6;
const U = 2 ** -24;
// y = xhat * gamma + beta with |xhat| up to ~4: the row mean and variance are f32 tree sums
// over C values (a few ulps relative), so 1e-5 absolute + relative has a wide margin while a
// wrong statistic (one channel left out of 1536 moves the mean by ~1e-3 std) does not pass.
// The mean itself is rounded to f32: error U * |mean| * rstd in xhat (kappa below), which only
// matters for the large-offset case.
const FWD = { atol: 1e-5, rtol: 1e-5 };
// dx subtracts two row means (O(1)) from g = dy*gamma; dgamma, dbeta are f32 sums over the
// rows that grow like sqrt(rows), hence the relative part.
const GRAD = { atol: 3e-5, rtol: 1e-4 };
const PARAM_GRAD = { atol: 1e-4, rtol: 1e-4 };

interface Case {
  x: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
}

function randomCase(rng: Rng, n: number, c: number, offset = 0, std = 1): Case {
  return {
    x: f32(rng.normals(n * c, std).map((v) => v + offset)),
    gamma: f32(rng.array(c, 0.5, 1.5)),
    beta: f32(rng.array(c, -0.5, 0.5)),
  };
}

/**
 * GPU vs reference. f16: x and dy are rounded to f16 before the reference sees them; the
 * kernels compute in f32 as for f32 storage (the bands above), then store y and dx as f16, one
 * rounding each (one f16 ulp, test/helpers/f16.ts); dgamma and dbeta are f32 results.
 */
async function check(ctx: Context, k0: Case, n: number, c: number, dy0: ArrayLike<number>,
  layout: SiteLayout | null, what: string, dtype: DType = 'f32') {
  const k = dtype === 'f16' ? { ...k0, x: Float64Array.from(asF16(k0.x)) } : k0;
  const dy = dtype === 'f16' ? asF16(dy0) : dy0;
  const act = (tol: { atol: number; rtol: number }) => (dtype === 'f16' ? storedAsF16(tol) : tol);
  const x = ctx.fromArray(k.x, [n, c], layout, dtype);
  const gamma = ctx.fromArray(k.gamma, [c]);
  const beta = ctx.fromArray(k.beta, [c]);
  for (const t of [x, gamma, beta]) t.requiresGrad = true;
  const y = layerNorm(x, gamma, beta);
  expect(y.layout).toBe(x.layout);
  expect(y.dtype).toBe(dtype);
  const grads = ctx.backward(y, ctx.fromArray(dy, [n, c], layout, dtype));
  const [yv, dx, dgamma, dbeta] = await Promise.all([
    y.read(), grads.get(x.id)!.read(), grads.get(gamma.id)!.read(), grads.get(beta.id)!.read(),
  ]);
  const fwd = ref.layerNormForward(k.x, n, c, k.gamma, k.beta, EPS);
  const bwd = ref.layerNormBackward(k.x, n, c, k.gamma, dy, fwd);
  let kappa = 0;
  let gain = 0;
  for (let r = 0; r < n; r++) {
    kappa = Math.max(kappa, Math.abs(fwd.mean[r]!) * fwd.rstd[r]!);
    gain = Math.max(gain, fwd.rstd[r]!);
  }
  const xhatErr = 2 * U * kappa;
  expectClose(yv, fwd.y, act({ ...FWD, atol: FWD.atol + xhatErr * 1.5 }), `${what}: y`);
  expectClose(dx, bwd.dx, act({ ...GRAD, atol: GRAD.atol + xhatErr * gain * 1.5 }), `${what}: dx`);
  expectClose(dgamma, bwd.dgamma, { ...PARAM_GRAD, atol: PARAM_GRAD.atol + xhatErr * n }, `${what}: dgamma`);
  expectClose(dbeta, bwd.dbeta, PARAM_GRAD, `${what}: dbeta`);
}

describe('layerNorm reference (finite differences)', () => {
  it('dx, dgamma, dbeta match finite differences', () => {
    const rng = new Rng(4);
    const n = 4;
    const c = 5;
    const k = randomCase(rng, n, c, 0.5);
    const w = projection(n * c);
    const loss = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) =>
      dot(ref.layerNormForward(x, n, c, g, b, EPS).y, w);
    const fwd = ref.layerNormForward(k.x, n, c, k.gamma, k.beta, EPS);
    const g = ref.layerNormBackward(k.x, n, c, k.gamma, w, fwd);
    expectGradientMatches((p) => loss(p, k.gamma, k.beta), k.x, g.dx, 'dx');
    expectGradientMatches((p) => loss(k.x, p, k.beta), k.gamma, g.dgamma, 'dgamma');
    expectGradientMatches((p) => loss(k.x, k.gamma, p), k.beta, g.dbeta, 'dbeta');
  });

  it('normalizes a row by hand', () => {
    // Row (1, 2, 3, 4): mean 2.5, biased variance 1.25.
    const fwd = ref.layerNormForward([1, 2, 3, 4], 1, 4, [1, 1, 1, 1], [0, 0, 0, 0], 0);
    expectClose(fwd.y, [-1.5, -0.5, 0.5, 1.5].map((v) => v / Math.sqrt(1.25)), { atol: 1e-15, rtol: 0 }, 'y');
  });
});

describe('layerNorm on the GPU', () => {
  const getCtx = useContext();

  // [rows, C]: tiny and awkward C (1 thread per row up to 256), odd rows, and rows enough for
  // several dgamma/dbeta passes (C = 40: 64-channel tiles, 64 rows per chunk, 4501 -> 71 -> 2 -> 1).
  const shapes: [number, number][] = [
    [1, 1], [7, 3], [33, 5], [35, 13], [19, 40], [9, 96], [5, 384], [3, 1536], [4501, 40], [129, 770],
  ];
  for (const [n, c] of shapes) {
    it(`[${n}, ${c}]: forward and backward`, async () => {
      const ctx = getCtx();
      const rng = new Rng(n * 17 + c);
      const k = randomCase(rng, n, c, 0.4, 1.5);
      await check(ctx, k, n, c, f32(rng.array(n * c)), null, `[${n}, ${c}]`);
      ctx.dispose();
    });
  }

  for (const [n, c] of shapes) {
    it(`[${n}, ${c}] in f16: forward and backward`, async (t) => {
      const ctx = getCtx();
      needF16(t, ctx);
      const rng = new Rng(n * 17 + c);
      const k = randomCase(rng, n, c, 0.4, 1.5);
      await check(ctx, k, n, c, f32(rng.array(n * c)), null, `[${n}, ${c}] f16`, 'f16');
      ctx.dispose();
    });
  }

  it('dense batch 1, 1x7x5 map, C = 13', async () => {
    const ctx = getCtx();
    const layout = SiteLayout.dense(1, 7, 5);
    const rng = new Rng(3);
    const k = randomCase(rng, layout.rows, 13);
    await check(ctx, k, layout.rows, 13, f32(rng.array(layout.rows * 13)), layout, 'dense batch 1');
    ctx.dispose();
  });

  it('sparse SparK layout: one image fully masked, one fully visible, one partial', async () => {
    const ctx = getCtx();
    const rng = new Rng(8);
    const visible = new Uint8Array(27);
    visible.fill(1, 9, 18);
    visible.set(rng.choose(9, 5), 18);
    const layout = new PatchMask(3, 3, 3, visible).layoutAt(12, 12);
    const c = 40;
    const k = randomCase(rng, layout.rows, c);
    await check(ctx, k, layout.rows, c, f32(rng.array(layout.rows * c)), layout, 'sparse');
    ctx.dispose();
  });

  it('every site masked (0 rows): empty output, zero parameter grads', async () => {
    const ctx = getCtx();
    const layout = new PatchMask(2, 3, 3, new Uint8Array(18)).layoutAt(6, 6);
    const c = 5;
    const x = ctx.fromArray([], [0, c], layout);
    const gamma = ctx.fromArray([1, 2, 3, 4, 5], [c]);
    const beta = ctx.fromArray([0, 0, 0, 0, 0], [c]);
    for (const t of [x, gamma, beta]) t.requiresGrad = true;
    const y = layerNorm(x, gamma, beta);
    expect(y.shape).toEqual([0, c]);
    const grads = ctx.backward(y, ctx.zeros([0, c], layout));
    expect(grads.get(x.id)!.size).toBe(0);
    expectClose(await grads.get(gamma.id)!.read(), new Float64Array(c), { atol: 0, rtol: 0 }, 'dgamma');
    expectClose(await grads.get(beta.id)!.read(), new Float64Array(c), { atol: 0, rtol: 0 }, 'dbeta');
    ctx.dispose();
  });

  it('rows with a large common offset (mean 1000, std 1) are normalized stably', async () => {
    // The variance is the mean of (x - mean)^2, never E[x^2] - E[x]^2 (which in f32 would be
    // noise at x ~ 1000); the f32 rounding of the mean (kappa = 1000) is in `check`'s bands.
    const ctx = getCtx();
    const n = 21;
    const c = 96;
    const rng = new Rng(1000);
    const k = randomCase(rng, n, c, 1000, 1);
    await check(ctx, k, n, c, f32(rng.array(n * c)), null, 'offset 1000');
    ctx.dispose();
  });

  it('eps is honoured', async () => {
    const ctx = getCtx();
    const rng = new Rng(6);
    const n = 5;
    const c = 13;
    const k = randomCase(rng, n, c, 0, 0.01); // variance 1e-4 against eps 1e-3
    const y = layerNorm(ctx.fromArray(k.x, [n, c]), ctx.fromArray(k.gamma, [c]), ctx.fromArray(k.beta, [c]), 1e-3);
    expectClose(await y.read(), ref.layerNormForward(k.x, n, c, k.gamma, k.beta, 1e-3).y, FWD, 'y');
    ctx.dispose();
  });

  it('mid-graph: layerNorm -> scale -> used twice -> sum, vs finite differences', async () => {
    // L = sum(s*s + s*w), s = -0.7 * ln(x): s is used twice and the scale is not 1, so an
    // ignored upstream gradient or a missing accumulation shows up.
    const ctx = getCtx();
    const n = 7;
    const c = 6;
    const rng = new Rng(321);
    const k = randomCase(rng, n, c, 0.3, 1.2);
    const wv = f32(rng.array(n * c));
    const lossF64 = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      const y = ref.layerNormForward(x, n, c, g, b, EPS).y;
      let l = 0;
      for (let i = 0; i < y.length; i++) l += (-0.7 * y[i]!) ** 2 + -0.7 * y[i]! * wv[i]!;
      return l;
    };
    const x = ctx.fromArray(k.x, [n, c]);
    x.requiresGrad = true;
    const gamma = ctx.parameter('norm.weight', [c], k.gamma);
    const beta = ctx.parameter('norm.bias', [c], k.beta);
    const out = ctx.tidy(() => {
      const s = ew.scale(layerNorm(x, gamma, beta), -0.7);
      const l = ew.sum(ew.add(ew.mul(s, s), ew.mul(s, ctx.fromArray(wv, [n, c]))));
      return { l, gx: ctx.backward(l).get(x.id)! };
    });
    const [l, gx, gg, gb] = await Promise.all([out.l.read(), out.gx.read(), gamma.grad!.read(), beta.grad!.read()]);
    expect(l[0]).toBeCloseTo(lossF64(k.x, k.gamma, k.beta), 3);
    // f32 forward rounding (~1e-6 relative) through a loss of O(n*c) terms; float64 finite
    // differences are exact to ~1e-8.
    const tol = { atol: 1e-4, rtol: 1e-4 };
    expectClose(gx, numericGrad((p) => lossF64(p, k.gamma, k.beta), k.x), tol, 'dL/dx');
    expectClose(gg, numericGrad((p) => lossF64(k.x, p, k.beta), k.gamma), tol, 'dL/dgamma');
    expectClose(gb, numericGrad((p) => lossF64(k.x, k.gamma, p), k.beta), tol, 'dL/dbeta');
    ctx.dispose();
  });
});
