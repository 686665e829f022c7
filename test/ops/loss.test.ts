/**
 * SparK's masked patch loss: the float64 reference against finite differences and against a
 * transcription of the official code; then the GPU forward, backward (alone and mid-graph)
 * and the visualisation composite against the reference.
 */
import { describe, expect, it } from 'vitest';
import { maskedPatchLoss, reconstructionImages } from '../../src/ops/loss.ts';
import { elementwise as ew } from '../../src/ops/elementwise.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Context } from '../../src/tensor/context.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';
import { dot, expectGradientMatches, numericGrad, projection } from '../helpers/finite-diff.ts';
import * as ref from '../reference/loss.ts';

/** A test case: grid, patch side, and the mask's visible flags. */
interface Case {
  name: string;
  grid: ref.Grid;
  visible: Uint8Array;
}

function makeCase(name: string, batch: number, ph: number, pw: number, p: number, visible: (rng: Rng) => Uint8Array, seed = 1): Case {
  return { name, grid: { batch, height: ph * p, width: pw * p, ph, pw }, visible: visible(new Rng(seed)) };
}

/** SparK's masking: every image keeps exactly round(h*w*(1 - ratio)) patches. */
function sparkMask(batch: number, ph: number, pw: number, ratio = 0.6) {
  return (rng: Rng) => {
    const keep = Math.round(ph * pw * (1 - ratio));
    const out = new Uint8Array(batch * ph * pw);
    for (let b = 0; b < batch; b++) out.set(rng.choose(ph * pw, keep), b * ph * pw);
    return out;
  };
}

const allVisible = (n: number) => () => new Uint8Array(n).fill(1);
const allMasked = (n: number) => () => new Uint8Array(n);

/**
 * Inputs: an image whose patches sit at large, different offsets (the case where a one-pass
 * E[x^2] - E[x]^2 or an unshifted f32 mean would lose digits) and a prediction of size ~1.
 */
function inputs(c: Case, seed: number, offset: number, noise = 1) {
  const rng = new Rng(seed);
  const g = c.grid;
  const p = g.height / g.ph;
  const patchOffset = Array.from({ length: g.batch * g.ph * g.pw }, () => offset * rng.uniform(0.5, 1) * (rng.next() < 0.5 ? -1 : 1));
  const x = new Float64Array(g.batch * g.height * g.width * 3);
  for (let b = 0; b < g.batch; b++)
    for (let y = 0; y < g.height; y++)
      for (let xx = 0; xx < g.width; xx++)
        for (let ch = 0; ch < 3; ch++) {
          const patch = (b * g.ph + Math.floor(y / p)) * g.pw + Math.floor(xx / p);
          x[((b * g.height + y) * g.width + xx) * 3 + ch] = patchOffset[patch]! + rng.normal() * rng.uniform(0.2, 2) * noise;
        }
  return { x: f32(x), rec: f32(rng.array(x.length, -2, 2)) };
}

function upload(ctx: Context, c: Case, data: ArrayLike<number>, dtype: 'f32' | 'f16' = 'f32') {
  const g = c.grid;
  return ctx.fromArray(data, [g.batch * g.height * g.width, 3], SiteLayout.dense(g.batch, g.height, g.width), dtype);
}

function maskOf(c: Case): PatchMask {
  return new PatchMask(c.grid.batch, c.grid.ph, c.grid.pw, c.visible);
}

describe('masked patch loss reference', () => {
  const c = makeCase('B2 p2', 2, 2, 3, 2, sparkMask(2, 2, 3), 5);
  const { x, rec } = inputs(c, 9, 3);

  it('gradient matches finite differences (rec only)', () => {
    const analytic = ref.maskedPatchLossGrad(rec, x, c.grid, c.visible);
    expectGradientMatches((r) => ref.maskedPatchLoss(r, x, c.grid, c.visible), rec, analytic, 'dL/drec');
    // Visible patches get exactly zero gradient.
    const g = c.grid;
    const p = g.height / g.ph;
    for (let e = 0; e < rec.length; e++) {
      const site = Math.floor(e / 3);
      const xx = site % g.width;
      const y = Math.floor(site / g.width) % g.height;
      const b = Math.floor(site / (g.width * g.height));
      if (c.visible[(b * g.ph + Math.floor(y / p)) * g.pw + Math.floor(xx / p)]) expect(analytic[e]).toBe(0);
    }
  });

  it('equals the transcribed official code (patchify order does not matter)', () => {
    for (const [name, vis] of [
      ['spark mask', c.visible],
      ['all masked', new Uint8Array(c.visible.length)],
      ['one masked', Uint8Array.from(c.visible, (_, i) => (i === 4 ? 0 : 1))],
    ] as const) {
      const a = ref.maskedPatchLoss(rec, x, c.grid, vis);
      const b = ref.officialLoss(rec, x, c.grid, vis);
      expect(Math.abs(a - b), name).toBeLessThan(1e-12 * Math.abs(b));
    }
    expect(ref.maskedPatchLoss(rec, x, c.grid, new Uint8Array(c.visible.length).fill(1))).toBe(0);
  });

  it('reconstruction of the true target gives back the image', () => {
    const t = ref.target(x, c.grid);
    const r = ref.reconstruction(t, x, c.grid, c.visible);
    expectClose(r.reconstruction, x, { atol: 1e-12, rtol: 1e-12 }, 'rec = target -> image');
    expectClose(r.composite, x, { atol: 1e-12, rtol: 1e-12 }, 'composite');
  });
});

// Tolerances (f32 kernel vs float64 reference on f32-rounded inputs):
// - loss: a mean of squared errors of O(1) values, each computed with a few roundings and
//   summed by trees of <= 12 levels: relative error ~1e-6. rtol 1e-5 leaves 10x margin.
// - gradient: 2 (rec - t) * scale; t = ((x - shift) - mean_d) / std carries an absolute error
//   of a few ulps of |t| <= ~6 (shift exact, mean_d and std to ~1e-7 relative), so
//   |error| <= ~1e-6 * 2 * scale; atol 4e-6 * 2 * scale (4x margin). Were the per-patch
//   offsets (up to 1000) not removed exactly, |error| would reach ulp(1000) = 6e-5 * 2 * scale.
const LOSS_TOL = { atol: 0, rtol: 1e-5 };
const gradTol = (c: Case) => {
  const n = (c.grid.height / c.grid.ph) ** 2 * 3;
  let masked = 0;
  for (const v of c.visible) masked += v ? 0 : 1;
  const scale = 2 / n / (masked + 1e-8);
  return { atol: 4e-6 * scale, rtol: 1e-5 };
};

describe('masked patch loss on the GPU', () => {
  const getCtx = useContext();

  const cases: Case[] = [
    makeCase('B1 p4 3x3 spark mask', 1, 3, 3, 4, sparkMask(1, 3, 3), 1),
    makeCase('B3 p4 5x5 spark mask', 3, 5, 5, 4, sparkMask(3, 5, 5), 2),
    makeCase('B3 p8 2x3 spark mask', 3, 2, 3, 8, sparkMask(3, 2, 3), 3),
    makeCase('B1 p8 3x3 all visible', 1, 3, 3, 8, allVisible(9)),
    makeCase('B3 p4 3x2 all masked', 3, 3, 2, 4, allMasked(18)),
    makeCase('B3 p4 2x2 one image all masked, one all visible', 3, 2, 2, 4, () =>
      Uint8Array.from([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0])),
    makeCase('B1 p32 1x1 the real patch size, masked', 1, 1, 1, 32, allMasked(1)),
  ];

  // f16: the prediction rec (an activation) is rounded to f16 first and its gradient stored as
  // f16 (one f16 ulp on top of the f32 bound, test/helpers/f16.ts); the image (the target)
  // and the loss stay f32, so the loss keeps the f32 bound.
  for (const dtype of ['f32', 'f16'] as const) for (const c of cases) {
    for (const offset of [0, 1000]) {
      it(`${c.name}, per-patch offsets up to ${offset}: loss and gradient${dtype === 'f16' ? ' [f16 rec]' : ''}`, async (t) => {
        const ctx = getCtx();
        if (dtype === 'f16') needF16(t, ctx);
        const inp = inputs(c, 17 + offset, offset);
        const x = inp.x;
        const rec = dtype === 'f16' ? asF16(inp.rec) : inp.rec;
        const image = upload(ctx, c, x);
        const r = upload(ctx, c, rec, dtype);
        r.requiresGrad = true;
        const loss = maskedPatchLoss(r, image, maskOf(c));
        const gySeed = 1.75; // a seed other than 1: the kernel must read the upstream gradient
        const grads = ctx.backward(loss, ctx.fromArray([gySeed], [1]));
        const [l, g] = await Promise.all([loss.read(), grads.get(r.id)!.read()]);

        const lRef = ref.maskedPatchLoss(rec, x, c.grid, c.visible);
        const gRef = ref.maskedPatchLossGrad(rec, x, c.grid, c.visible).map((v) => v * gySeed);
        if (c.visible.every((v) => v)) {
          expect(l[0]).toBe(0);
          expect(g.every((v) => v === 0)).toBe(true);
        }
        expect(loss.dtype).toBe('f32');
        expect(grads.get(r.id)!.dtype).toBe(dtype);
        expectClose(l, [lRef], LOSS_TOL, 'loss');
        expectClose(g, gRef, dtype === 'f16' ? storedAsF16(gradTol(c)) : gradTol(c), 'dL/drec');
        ctx.dispose();
      });
    }
  }

  it('mid-graph: L = 3 * loss(1.7 * r) + sum(r * w), gradient vs finite differences', async () => {
    const ctx = getCtx();
    const c = makeCase('B2 p4 3x3', 2, 3, 3, 4, sparkMask(2, 3, 3), 8);
    const { x, rec } = inputs(c, 31, 50);
    const w = f32(projection(rec.length, 3));
    const lossF64 = (r: Float64Array) =>
      3 * ref.maskedPatchLoss(r.map((v) => 1.7 * v), x, c.grid, c.visible) + dot(r, w);
    const image = upload(ctx, c, x);
    const r = upload(ctx, c, rec);
    r.requiresGrad = true;
    const out = ctx.tidy(() => {
      const loss = maskedPatchLoss(ew.scale(r, 1.7), image, maskOf(c));
      const L = ew.add(ew.scale(loss, 3), ew.sum(ew.mul(r, upload(ctx, c, w))));
      return { L, g: ctx.backward(L).get(r.id)! };
    });
    const [L, g] = await Promise.all([out.L.read(), out.g.read()]);
    expectClose(L, [lossF64(rec)], { atol: 1e-4, rtol: 1e-5 }, 'L'); // sum(r*w) over 864 terms in f32
    // Finite differences of the float64 function; the GPU gradient is f32 (see gradTol).
    expectClose(g, numericGrad(lossF64, rec), { atol: 1e-5, rtol: 1e-4 }, 'dL/dr');
    ctx.dispose();
  });

  it('near-constant patches (variance ~ the 1e-6 inside the sqrt) and an exactly constant one', async () => {
    // Only here does the place of eps matter: sqrt(var + 1e-6) vs sqrt(var) + 1e-6 differ by
    // a factor ~1.4 at var = 1e-6 and by 1000x on a constant patch (where t = 0).
    const ctx = getCtx();
    const c = makeCase('B2 p4 2x2', 2, 2, 2, 4, sparkMask(2, 2, 2, 0.75), 4);
    const { x, rec } = inputs(c, 12, 0.5, 1e-3);
    for (let y = 0; y < 4; y++) for (let e = 0; e < 4 * 3; e++) x[y * 8 * 3 + e] = 0.25; // patch 0 of image 0
    const vis = Uint8Array.from(c.visible);
    vis[0] = 0; // the constant patch is masked, so it counts
    const cc = { ...c, visible: vis };
    const image = upload(ctx, cc, x);
    const r = upload(ctx, cc, rec);
    r.requiresGrad = true;
    const loss = maskedPatchLoss(r, image, maskOf(cc));
    const g = await ctx.backward(loss).get(r.id)!.read();
    expectClose(await loss.read(), [ref.maskedPatchLoss(rec, x, cc.grid, vis)], LOSS_TOL, 'loss');
    expectClose(g, ref.maskedPatchLossGrad(rec, x, cc.grid, vis), gradTol(cc), 'dL/drec');
    ctx.dispose();
  });

  it('no gradient is recorded when rec does not require one', () => {
    const ctx = getCtx();
    const c = makeCase('B1 p4', 1, 2, 2, 4, sparkMask(1, 2, 2));
    const { x, rec } = inputs(c, 2, 0);
    const image = upload(ctx, c, x);
    image.requiresGrad = true; // the target is data: no gradient flows to it
    const before = ctx.tape.length;
    const loss = maskedPatchLoss(upload(ctx, c, rec), image, maskOf(c));
    expect(loss.requiresGrad).toBe(false);
    expect(ctx.tape.length).toBe(before);
    ctx.dispose();
  });

  for (const c of [cases[1]!, cases[5]!, cases[6]!]) {
    it(`reconstructionImages, ${c.name}`, async () => {
      const ctx = getCtx();
      const { x, rec } = inputs(c, 5, 1000);
      const out = reconstructionImages(upload(ctx, c, rec), upload(ctx, c, x), maskOf(c));
      const [masked, recon, composite] = await Promise.all([out.masked.read(), out.reconstruction.read(), out.composite.read()]);
      const want = ref.reconstruction(rec, x, c.grid, c.visible);
      // masked and the visible part of the composite are copies: exact.
      expectClose(masked, want.masked, { atol: 0, rtol: 0 }, 'masked');
      // rec * std + mean with |mean| <= 1000: a few ulps of the result (ulp(1000) = 6.1e-5),
      // plus the f32 error of std (~1e-7 relative) times |rec * std| <= ~10.
      const tol = { atol: 1e-5, rtol: 3e-7 };
      expectClose(recon, want.reconstruction, tol, 'reconstruction');
      expectClose(composite, want.composite, tol, 'composite');
      ctx.dispose();
    });
  }
});
