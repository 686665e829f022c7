/**
 * BatchNorm (src/ops/norm.ts, shaders/batchnorm.wgsl): the float64 reference checked by finite
 * differences, then the GPU forward, backward and running-statistics update against it, on
 * dense maps and on SparK sparse maps (statistics over the active sites only).
 */
import { describe, expect, it } from 'vitest';
import { batchNorm, type BatchNormState } from '../../src/ops/norm.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Context } from '../../src/tensor/context.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose, maxViolation } from '../helpers/check.ts';
import { dot, expectGradientMatches, numericGrad, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/norm.ts';
import type { DType } from '../../src/tensor/precision.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';

// Tolerances. The f32 floor: the mean is rounded to f32, off by up to half an ulp of |mean|,
// so xhat = (x - mean) * invstd carries ~U * kappa absolute error, kappa = |mean| * invstd
// (about 1 for centred data, 1000 for mean 1000 / std 1), and the chunked Welford/Chan
// statistics and 1/sqrt add a few ulps relative. Each band below is a fixed part (a few
// hundred ulps of the O(1) values, far below what a wrong statistic gives: one row of 4500
// missing moves the mean by ~2e-4 std) plus that kappa term scaled by how each output uses
// xhat (see `tolerances`).
const U = 2 ** -24;
const FWD = { atol: 1e-5, rtol: 1e-5 };
// dx subtracts two per-channel sums (O(1) after the 1/N) from dy: a little wider than y.
const GRAD = { atol: 3e-5, rtol: 1e-4 };
// dgamma, dbeta are f32 sums over the rows; they grow like sqrt(rows), hence relative.
const PARAM_GRAD = { atol: 1e-4, rtol: 1e-4 };
// Running statistics are O(1) blends of the mean and the unbiased variance.
const STATE = { atol: 1e-5, rtol: 1e-5 };

const EPS = 1e-5;
const MOMENTUM = 0.1;

interface Case {
  x: Float64Array;
  gamma: Float64Array;
  beta: Float64Array;
  rm: Float64Array;
  rv: Float64Array;
}

function randomCase(rng: Rng, n: number, c: number, offset = 0, std = 1): Case {
  return {
    x: f32(rng.normals(n * c, std).map((v) => v + offset)),
    gamma: f32(rng.array(c, 0.5, 1.5)),
    beta: f32(rng.array(c, -0.5, 0.5)),
    rm: f32(rng.array(c, -0.5, 0.5)),
    rv: f32(rng.array(c, 0.5, 2)),
  };
}

function makeState(ctx: Context, rm: ArrayLike<number>, rv: ArrayLike<number>): BatchNormState {
  const c = rm.length;
  const state = { runningMean: ctx.persistent([c]), runningVar: ctx.persistent([c]) };
  ctx.gpu.write(state.runningMean.buffer, Float32Array.from(rm));
  ctx.gpu.write(state.runningVar.buffer, Float32Array.from(rv));
  return state;
}

function leaf(ctx: Context, data: ArrayLike<number>, shape: number[], layout: SiteLayout | null = null, dtype: DType = 'f32'): Tensor {
  const t = ctx.fromArray(data, shape, layout, dtype);
  t.requiresGrad = true;
  return t;
}

/** Runs the GPU op forward and backward (seeded with dy) and reads everything back. */
async function runGpu(ctx: Context, k: Case, n: number, c: number, training: boolean, dy: ArrayLike<number>,
  layout: SiteLayout | null = null, dtype: DType = 'f32') {
  const state = makeState(ctx, k.rm, k.rv);
  const x = leaf(ctx, k.x, [n, c], layout, dtype);
  const gamma = leaf(ctx, k.gamma, [c]);
  const beta = leaf(ctx, k.beta, [c]);
  const y = batchNorm(x, gamma, beta, state, { training });
  expect(y.layout).toBe(x.layout);
  expect(y.dtype).toBe(dtype);
  const grads = ctx.backward(y, ctx.fromArray(dy, [n, c], layout, dtype));
  const [yv, dx, dgamma, dbeta, rm, rv] = await Promise.all([
    y.read(), grads.get(x.id)!.read(), grads.get(gamma.id)!.read(), grads.get(beta.id)!.read(),
    state.runningMean.read(), state.runningVar.read(),
  ]);
  return { y: yv, dx, dgamma, dbeta, rm, rv };
}

function reference(k: Case, n: number, c: number, training: boolean, dy: ArrayLike<number>) {
  const fwd = ref.batchNormForward(k.x, n, c, k.gamma, k.beta,
    { training, runningMean: k.rm, runningVar: k.rv, momentum: MOMENTUM, eps: EPS });
  return { ...fwd, ...ref.batchNormBackward(k.x, n, c, k.gamma, dy, fwd, training) };
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

/** The fixed bands plus the f32 mean-rounding floor, U * kappa, carried through each output. */
function tolerances(k: Case, want: ReturnType<typeof reference>, n: number, dy: ArrayLike<number>) {
  let kappa = 0;
  let gain = 0; // |gamma| * invstd: how dx scales an error in xhat
  for (let j = 0; j < want.mean.length; j++) {
    kappa = Math.max(kappa, Math.abs(want.mean[j]!) * want.invstd[j]!);
    gain = Math.max(gain, Math.abs(k.gamma[j]!) * want.invstd[j]!);
  }
  const xhatErr = 2 * U * kappa;
  const dyMax = maxAbs(dy);
  return {
    y: { ...FWD, atol: FWD.atol + xhatErr * maxAbs(k.gamma) },
    dx: { ...GRAD, atol: GRAD.atol + xhatErr * gain * dyMax },
    dgamma: { ...PARAM_GRAD, atol: PARAM_GRAD.atol + xhatErr * n * dyMax },
  };
}

function compare(got: Awaited<ReturnType<typeof runGpu>>, want: ReturnType<typeof reference>,
  tol: ReturnType<typeof tolerances>, what: string) {
  expectClose(got.y, want.y, tol.y, `${what}: y`);
  expectClose(got.dx, want.dx, tol.dx, `${what}: dx`);
  expectClose(got.dgamma, want.dgamma, tol.dgamma, `${what}: dgamma`);
  expectClose(got.dbeta, want.dbeta, PARAM_GRAD, `${what}: dbeta`);
  expectClose(got.rm, want.runningMean, STATE, `${what}: running mean`);
  expectClose(got.rv, want.runningVar, STATE, `${what}: running var`);
}

/**
 * GPU vs reference for one case, forward, backward and running statistics. f16: x and dy are
 * rounded to f16 before the reference sees them; the kernels compute in f32 exactly as for f32
 * storage (the bands above), then store y and dx as f16, one rounding each (one f16 ulp,
 * test/helpers/f16.ts). dgamma, dbeta and the running statistics are f32 results: unchanged.
 */
async function check(ctx: Context, k0: Case, n: number, c: number, training: boolean, dy0: ArrayLike<number>,
  layout: SiteLayout | null, what: string, dtype: DType = 'f32') {
  const k = dtype === 'f16' ? { ...k0, x: Float64Array.from(asF16(k0.x)) } : k0;
  const dy = dtype === 'f16' ? asF16(dy0) : dy0;
  const got = await runGpu(ctx, k, n, c, training, dy, layout, dtype);
  const want = reference(k, n, c, training, dy);
  const tol = tolerances(k, want, n, dy);
  if (dtype === 'f16') Object.assign(tol, { y: storedAsF16(tol.y), dx: storedAsF16(tol.dx) });
  compare(got, want, tol, what);
  return { got, want };
}

describe('batchNorm reference (finite differences)', () => {
  const rng = new Rng(5);
  const n = 6;
  const c = 3;
  const k = randomCase(rng, n, c);
  const w = projection(n * c);
  for (const training of [true, false]) {
    const mode = training ? 'training' : 'eval';
    const loss = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) =>
      dot(ref.batchNormForward(x, n, c, g, b,
        { training, runningMean: k.rm, runningVar: k.rv, momentum: MOMENTUM, eps: EPS }).y, w);
    it(`${mode}: dx, dgamma, dbeta match finite differences`, () => {
      const fwd = ref.batchNormForward(k.x, n, c, k.gamma, k.beta,
        { training, runningMean: k.rm, runningVar: k.rv, momentum: MOMENTUM, eps: EPS });
      const g = ref.batchNormBackward(k.x, n, c, k.gamma, w, fwd, training);
      expectGradientMatches((p) => loss(p, k.gamma, k.beta), k.x, g.dx, `${mode} dx`);
      expectGradientMatches((p) => loss(k.x, p, k.beta), k.gamma, g.dgamma, `${mode} dgamma`);
      expectGradientMatches((p) => loss(k.x, k.gamma, p), k.beta, g.dbeta, `${mode} dbeta`);
    });
  }
  it('running update uses the unbiased variance and momentum 0.1 (hand-computed)', () => {
    // One channel, x = 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3.
    const fwd = ref.batchNormForward([1, 2, 3, 4], 4, 1, [1], [0],
      { training: true, runningMean: [0], runningVar: [1], momentum: 0.1, eps: 0 });
    expect(fwd.runningMean[0]).toBeCloseTo(0.25, 15);
    expect(fwd.runningVar[0]).toBeCloseTo(0.9 + 0.1 * (5 / 3), 15);
    expect(fwd.y[0]).toBeCloseTo(-1.5 / Math.sqrt(1.25), 15);
  });
});

describe('batchNorm on the GPU, dense', () => {
  const getCtx = useContext();

  // [rows, C]: C not a multiple of 4, odd rows, and shapes that need 1 and 2 combine levels
  // (C = 40 -> 64-channel tiles, 64 rows per chunk: 4500 rows -> 71 -> 2 -> 1 chunks).
  const shapes: [number, number][] = [[7, 3], [33, 5], [35, 13], [199, 40], [1025, 5], [4500, 40], [2, 1]];
  for (const training of [true, false]) {
    for (const [n, c] of shapes) {
      it(`${training ? 'training' : 'eval'} [${n}, ${c}]: forward, backward, running stats`, async () => {
        const ctx = getCtx();
        const rng = new Rng(n * 31 + c);
        const k = randomCase(rng, n, c, 0.3, 1.7);
        const dy = f32(rng.array(n * c));
        await check(ctx, k, n, c, training, dy, null, `[${n}, ${c}]`);
        ctx.dispose();
      });
    }
  }

  for (const training of [true, false]) {
    for (const [n, c] of shapes) {
      it(`${training ? 'training' : 'eval'} [${n}, ${c}] in f16: forward, backward, running stats`, async (t) => {
        const ctx = getCtx();
        needF16(t, ctx);
        const rng = new Rng(n * 31 + c);
        const k = randomCase(rng, n, c, 0.3, 1.7);
        await check(ctx, k, n, c, training, f32(rng.array(n * c)), null, `[${n}, ${c}] f16`, 'f16');
        ctx.dispose();
      });
    }
  }

  it('batch 1 of a dense 1x5x7 map, C = 13', async () => {
    const ctx = getCtx();
    const layout = SiteLayout.dense(1, 5, 7);
    const n = layout.rows;
    const c = 13;
    const rng = new Rng(77);
    const k = randomCase(rng, n, c);
    const dy = f32(rng.array(n * c));
    await check(ctx, k, n, c, true, dy, layout, 'dense batch 1');
    ctx.dispose();
  });

  it('a large common offset (mean 1000, std 1): statistics stay accurate', async () => {
    // x is 1000 + N(0,1) in f32 (spacing 6.1e-5 at 1000). E[x^2] - E[x]^2 in f32 would lose
    // the variance entirely (x^2 ~ 1e6 has spacing 0.06, the variance is 1); Welford/Chan
    // keep only deviations. What remains is the floor every f32 method has: the mean itself
    // is rounded (kappa = 1000, so y is good to ~1e-4 absolute), which `tolerances` adds.
    // The running variance must still match to STATE (1e-5 relative).
    const ctx = getCtx();
    const n = 2001;
    const c = 5;
    const rng = new Rng(1000);
    const k = randomCase(rng, n, c, 1000, 1);
    const dy = f32(rng.array(n * c));
    const { want } = await check(ctx, k, n, c, true, dy, null, 'offset 1000');
    expect(Math.min(...want.mean)).toBeGreaterThan(999);
    ctx.dispose();
  });

  it('running statistics after two consecutive training steps', async () => {
    const ctx = getCtx();
    const n = 301;
    const c = 13;
    const rng = new Rng(2);
    const k = randomCase(rng, n, c, 0.5, 2);
    const state = makeState(ctx, k.rm, k.rv);
    const gamma = ctx.fromArray(k.gamma, [c]);
    const beta = ctx.fromArray(k.beta, [c]);
    let rm: ArrayLike<number> = k.rm;
    let rv: ArrayLike<number> = k.rv;
    for (let step = 0; step < 2; step++) {
      const xs = f32(rng.normals(n * c, 1 + step).map((v) => v - step));
      ctx.tidy(() => void batchNorm(ctx.fromArray(xs, [n, c]), gamma, beta, state, { training: true }));
      const want = ref.batchNormForward(xs, n, c, k.gamma, k.beta,
        { training: true, runningMean: rm, runningVar: rv, momentum: MOMENTUM, eps: EPS });
      rm = want.runningMean;
      rv = want.runningVar;
    }
    expectClose(await state.runningMean.read(), rm, STATE, 'running mean after 2 steps');
    expectClose(await state.runningVar.read(), rv, STATE, 'running var after 2 steps');
    ctx.dispose();
  });

  it('momentum and eps options are honoured', async () => {
    const ctx = getCtx();
    const n = 20;
    const c = 3;
    const rng = new Rng(9);
    const k = randomCase(rng, n, c, 0, 0.01); // eps 1e-3 matters against variance 1e-4
    const state = makeState(ctx, k.rm, k.rv);
    const y = batchNorm(ctx.fromArray(k.x, [n, c]), ctx.fromArray(k.gamma, [c]), ctx.fromArray(k.beta, [c]),
      state, { training: true, momentum: 0.3, eps: 1e-3 });
    const want = ref.batchNormForward(k.x, n, c, k.gamma, k.beta,
      { training: true, runningMean: k.rm, runningVar: k.rv, momentum: 0.3, eps: 1e-3 });
    expectClose(await y.read(), want.y, FWD, 'y');
    expectClose(await state.runningMean.read(), want.runningMean, STATE, 'running mean');
    expectClose(await state.runningVar.read(), want.runningVar, STATE, 'running var');
    ctx.dispose();
  });

  it('one row in training throws; eval with one row works', async () => {
    const ctx = getCtx();
    const state = makeState(ctx, [0, 0, 0], [1, 1, 1]);
    const g = ctx.fromArray([1, 1, 1], [3]);
    const b = ctx.fromArray([0, 0, 0], [3]);
    const x = ctx.fromArray([1, 2, 3], [1, 3]);
    expect(() => batchNorm(x, g, b, state, { training: true })).toThrow(/more than 1 row/);
    const y = batchNorm(x, g, b, state, { training: false });
    expectClose(await y.read(), [1, 2, 3].map((v) => v / Math.sqrt(1 + EPS)), FWD, 'eval one row');
    ctx.dispose();
  });

  it('mid-graph: batchNorm -> scale -> used twice -> sum, vs finite differences', async () => {
    // L = sum(s*s + s*w), s = 1.5 * bn(x): s is used twice, so a rule that ignored its
    // upstream gradient or a missing accumulation shows up.
    const ctx = getCtx();
    const n = 9;
    const c = 5;
    const rng = new Rng(123);
    const k = randomCase(rng, n, c, 0.2, 1.3);
    const wv = f32(rng.array(n * c));
    const lossF64 = (x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      const y = ref.batchNormForward(x, n, c, g, b,
        { training: true, runningMean: k.rm, runningVar: k.rv, momentum: MOMENTUM, eps: EPS }).y;
      let l = 0;
      for (let i = 0; i < y.length; i++) l += (1.5 * y[i]!) ** 2 + 1.5 * y[i]! * wv[i]!;
      return l;
    };
    const state = makeState(ctx, k.rm, k.rv);
    const x = leaf(ctx, k.x, [n, c]);
    const gamma = ctx.parameter('bn.weight', [c], k.gamma);
    const beta = ctx.parameter('bn.bias', [c], k.beta);
    const out = ctx.tidy(() => {
      const s = ew.scale(batchNorm(x, gamma, beta, state, { training: true }), 1.5);
      const l = ew.sum(ew.add(ew.mul(s, s), ew.mul(s, ctx.fromArray(wv, [n, c]))));
      return { l, gx: ctx.backward(l).get(x.id)! };
    });
    const [l, gx, gg, gb] = await Promise.all([out.l.read(), out.gx.read(), gamma.grad!.read(), beta.grad!.read()]);
    expect(l[0]).toBeCloseTo(lossF64(k.x, k.gamma, k.beta), 3);
    // The loss is O(n*c) = 45 with terms O(1): f32 rounding of the forward feeds the gradient
    // at ~1e-5 relative; finite differences of the float64 function are exact to ~1e-8.
    const tol = { atol: 1e-4, rtol: 1e-4 };
    expectClose(gx, numericGrad((p) => lossF64(p, k.gamma, k.beta), k.x), tol, 'dL/dx');
    expectClose(gg, numericGrad((p) => lossF64(k.x, p, k.beta), k.gamma), tol, 'dL/dgamma');
    expectClose(gb, numericGrad((p) => lossF64(k.x, k.gamma, p), k.beta), tol, 'dL/dbeta');
    ctx.dispose();
  });
});

describe('batchNorm on the GPU, sparse (SparK masks)', () => {
  const getCtx = useContext();

  // Image 0 fully masked, image 1 fully visible, image 2 (when present) a random 4 of 9 patches.
  const cases: { batch: number; grid: number; c: number; training: boolean }[] = [
    { batch: 2, grid: 6, c: 5, training: true },
    { batch: 3, grid: 12, c: 13, training: true },
    { batch: 3, grid: 6, c: 40, training: true },
    { batch: 3, grid: 12, c: 3, training: false },
  ];
  for (const [{ batch, grid, c, training }, dtype] of [...cases.map((k) => [k, 'f32'] as const), ...cases.map((k) => [k, 'f16'] as const)]) {
    it(`B=${batch}, 3x3 patches on ${grid}x${grid}, C=${c}, ${training ? 'training' : 'eval'}${dtype === 'f16' ? ', f16' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const rng = new Rng(batch * 100 + grid + c);
      const visible = new Uint8Array(batch * 9);
      visible.fill(1, 9, 18);
      if (batch > 2) visible.set(rng.choose(9, 4), 18);
      const layout = new PatchMask(batch, 3, 3, visible).layoutAt(grid, grid);
      const n = layout.rows;
      // A dense map, with values at masked sites too: the sparse op must never see them.
      const dense = randomCase(rng, layout.gridSize, c, 0.8, 1.2);
      const k = { ...dense, x: ref.gatherRows(dense.x, c, layout.sites!) };
      const dy = f32(rng.array(n * c));
      // Reference: BN on the gathered active rows only (SparK's SparseBatchNorm2d).
      const { got } = await check(ctx, k, n, c, training, dy, layout, `sparse ${dtype}`, dtype);
      if (training) {
        // BN over the zero-filled dense map (the wrong statistics) must differ, or this test
        // could not tell the two apart.
        const zeroFilled = new Float64Array(layout.gridSize * c);
        for (let r = 0; r < n; r++) zeroFilled.set(k.x.subarray(r * c, (r + 1) * c), layout.site(r) * c);
        const wrong = ref.batchNormForward(zeroFilled, layout.gridSize, c, k.gamma, k.beta,
          { training, runningMean: k.rm, runningVar: k.rv, momentum: MOMENTUM, eps: EPS });
        const wrongAtActive = ref.gatherRows(wrong.y, c, layout.sites!);
        expect(maxViolation(got.y, wrongAtActive, { atol: 0.1, rtol: 0 }).excess).toBeGreaterThan(0);
        expect(maxViolation(got.rv, wrong.runningVar, { atol: 0.01, rtol: 0 }).excess).toBeGreaterThan(0);
      }
      ctx.dispose();
    });
  }

  it('every site masked (0 rows): empty output, running stats untouched, zero parameter grads', async () => {
    const ctx = getCtx();
    const layout = new PatchMask(2, 3, 3, new Uint8Array(18)).layoutAt(6, 6);
    expect(layout.rows).toBe(0);
    const c = 5;
    const rm = [0.1, 0.2, 0.3, 0.4, 0.5];
    const rv = [1, 2, 3, 4, 5];
    for (const training of [true, false]) {
      const state = makeState(ctx, rm, rv);
      const x = leaf(ctx, [], [0, c], layout);
      const gamma = leaf(ctx, [1, 1, 1, 1, 1], [c]);
      const beta = leaf(ctx, [0, 0, 0, 0, 0], [c]);
      const y = batchNorm(x, gamma, beta, state, { training });
      expect(y.shape).toEqual([0, c]);
      expect(y.layout).toBe(layout);
      const grads = ctx.backward(y, ctx.zeros([0, c], layout));
      expect(grads.get(x.id)!.size).toBe(0);
      expectClose(await grads.get(gamma.id)!.read(), new Float64Array(c), { atol: 0, rtol: 0 }, 'dgamma');
      expectClose(await grads.get(beta.id)!.read(), new Float64Array(c), { atol: 0, rtol: 0 }, 'dbeta');
      expectClose(await state.runningMean.read(), f32(rm), { atol: 0, rtol: 0 }, 'running mean');
      expectClose(await state.runningVar.read(), f32(rv), { atol: 0, rtol: 0 }, 'running var');
    }
    ctx.dispose();
  });
});

describe('batchNorm reference for the large-offset case (self-check)', () => {
  it('two-pass float64 statistics are exact enough to judge the GPU', () => {
    // A column with mean 1000 and known deviations: the reference must return them exactly.
    const x = [999, 1001, 999, 1001];
    const fwd = ref.batchNormForward(x, 4, 1, [1], [0],
      { training: true, runningMean: [0], runningVar: [0], momentum: 1, eps: 0 });
    expect(fwd.runningMean[0]).toBe(1000);
    expect(fwd.runningVar[0]).toBeCloseTo(4 / 3, 14);
    expectClose(fwd.y, [-1, 1, -1, 1], { atol: 1e-14, rtol: 0 }, 'y');
  });
});
