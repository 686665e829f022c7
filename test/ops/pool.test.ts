import { describe, expect, it } from 'vitest';
import { maxPool2d } from '../../src/ops/pool.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { expectClose } from '../helpers/check.ts';
import { asF16, needF16, storedAsF16 } from '../helpers/f16.ts';
import { dot, expectGradientMatches, projection } from '../helpers/finite-diff.ts';
import { patchMask, type ImageMask } from '../helpers/masks.ts';
import * as ref from '../reference/pool.ts';
import { gather, scatter } from '../reference/sparse.ts';

// A max is one of its inputs and dx sums at most ceil(K/stride)^2 = 4 gradients (9 at
// stride 1), so f32 results are exact up to the rounding of those few additions.
const EXACT = { atol: 0, rtol: 0 };
const DX = { atol: 1e-6, rtol: 1e-6 };
// f16: x and dy rounded to f16 first. The maximum of f16 values is one of them (exact); dx sums
// the gradients routed to an input in f32 (DX) and stores the sum as f16 once (one f16 ulp,
// test/helpers/f16.ts).
const DX_F16 = storedAsF16(DX);

/** Distinct values spaced 0.01 apart and at least 0.005 away from 0: no ties, not even with the zeros of inactive sites. */
function distinct(rng: Rng, n: number): Float64Array {
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  return Float64Array.from(perm, (k) => (k - n / 2) * 0.01 + 0.005);
}

/** Post-ReLU-like values: exact zeros most of the time, and few distinct levels, so ties abound. */
function tieHeavy(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => (rng.next() < 0.6 ? 0 : [0.25, 0.5, 0.75][rng.int(3)]!));
}

/** The official simulation in float64: pool the zero-filled map, keep the active output rows. */
function simulate(xs: ArrayLike<number>, inL: SiteLayout, outL: SiteLayout, gys: ArrayLike<number>, g: ref.PoolGeometry) {
  const { y, arg } = ref.maxPoolForward(scatter(xs, inL, g.C), g);
  const dxDense = ref.maxPoolBackward(scatter(gys, outL, g.C), arg, g);
  return { y: gather(y, outL, g.C), dx: gather(dxDense, inL, g.C) };
}

describe('max pool reference (finite differences, away from ties)', () => {
  it('dense 3x3 stride 2 pad 1', () => {
    const rng = new Rng(21);
    const g = { B: 1, H: 5, W: 6, C: 2, K: 3, stride: 2, pad: 1 };
    const x = distinct(rng, g.B * g.H * g.W * g.C);
    const { Ho, Wo } = ref.poolOutSize(g);
    const proj = projection(g.B * Ho * Wo * g.C);
    const { arg } = ref.maxPoolForward(x, g);
    const dx = ref.maxPoolBackward(proj, arg, g);
    expectGradientMatches((p) => dot(ref.maxPoolForward(p, g).y, proj), x, dx, 'maxpool dx');
  });

  it('sparse (zero-filled, then masked), with negative values so inactive zeros win some windows', () => {
    const rng = new Rng(22);
    const C = 2;
    const mask = patchMask(rng, 2, 2, ['some', 'some']);
    const inL = mask.layoutAt(8, 8);
    const outL = mask.layoutAt(4, 4);
    const g = { B: 2, H: 8, W: 8, C, K: 3, stride: 2, pad: 1 };
    // Mostly negative (shifted by a whole number of 0.01 steps, so still 0.005 away from 0).
    const x = distinct(rng, inL.rows * C).map((v) => v - 0.3);
    const proj = projection(outL.rows * C);
    const { dx } = simulate(x, inL, outL, proj, g);
    expectGradientMatches((p) => dot(simulate(p, inL, outL, proj, g).y, proj), x, dx, 'sparse maxpool dx');
    // Some gradient really was dropped at an inactive winner (else this case tests nothing new).
    const { arg } = ref.maxPoolForward(scatter(x, inL, C), g);
    const rowOf = inL.rowOf;
    const outSites = Array.from({ length: outL.rows }, (_, r) => outL.site(r));
    expect(outSites.some((s) => [0, 1].some((c) => rowOf[arg[s * C + c]!]! < 0))).toBe(true);
  });
});

interface Case {
  name: string;
  B: number;
  H: number;
  W: number;
  C: number;
  K?: number;
  stride?: number;
  pad?: number;
  values: 'random' | 'ties';
  mask?: { h: number; w: number; images: ImageMask[] };
}

const cases: Case[] = [
  { name: 'dense, batch 1, C 3, odd 7x9', B: 1, H: 7, W: 9, C: 3, values: 'random' },
  { name: 'dense, C 13, 8x8, ties', B: 2, H: 8, W: 8, C: 13, values: 'ties' },
  { name: 'dense, C 5, 3x3 stride 1 pad 1, ties', B: 1, H: 5, W: 7, C: 5, stride: 1, values: 'ties' },
  { name: 'dense, C 4, 2x2 stride 2 pad 0', B: 1, H: 6, W: 8, C: 4, K: 2, pad: 0, values: 'random' },
  {
    name: 'sparse, C 5, 8x8, images none/all/some, random',
    B: 3, H: 8, W: 8, C: 5, values: 'random',
    mask: { h: 2, w: 2, images: ['none', 'all', 'some'] },
  },
  {
    name: 'sparse, C 13, 12x12 (4x4 tiles), ties with the zeros of inactive sites',
    B: 2, H: 12, W: 12, C: 13, values: 'ties',
    mask: { h: 3, w: 3, images: ['some', 'some'] },
  },
  {
    name: 'sparse, C 3, 8x8, stride 1, ties',
    B: 2, H: 8, W: 8, C: 3, stride: 1, values: 'ties',
    mask: { h: 2, w: 2, images: ['some', 'all'] },
  },
];

describe('maxPool2d on the GPU vs the float64 simulation', () => {
  const getCtx = useContext();

  for (const dtype of ['f32', 'f16'] as const) for (const tc of cases) {
    it(`${tc.name}${dtype === 'f16' ? ' [f16]' : ''}`, async (t) => {
      const ctx = getCtx();
      if (dtype === 'f16') needF16(t, ctx);
      const stored = dtype === 'f16' ? asF16 : f32;
      const rng = new Rng(tc.C * 31 + tc.H);
      const g = { B: tc.B, H: tc.H, W: tc.W, C: tc.C, K: tc.K ?? 3, stride: tc.stride ?? 2, pad: tc.pad ?? 1 };
      const { Ho, Wo } = ref.poolOutSize(g);
      let mask: PatchMask | null = null;
      if (tc.mask) mask = patchMask(rng, tc.mask.h, tc.mask.w, tc.mask.images);
      const inL = mask ? mask.layoutAt(tc.H, tc.W) : SiteLayout.dense(tc.B, tc.H, tc.W);
      const outL = mask ? mask.layoutAt(Ho, Wo) : SiteLayout.dense(tc.B, Ho, Wo);
      const n = inL.rows * tc.C;
      const xs = stored(tc.values === 'ties' ? tieHeavy(rng, n) : rng.array(n));
      const gys = stored(rng.array(outL.rows * tc.C));

      const x = ctx.fromArray(xs, [inL.rows, tc.C], inL, dtype);
      x.requiresGrad = true;
      const y = maxPool2d(x, { kernel: g.K, stride: g.stride, padding: g.pad });
      expect(y.layout!.equals(outL)).toBe(true);
      const sim = simulate(xs, inL, outL, gys, g);
      expect(y.dtype).toBe(dtype);
      expectClose(await y.read(), sim.y, EXACT, 'forward');
      const grads = ctx.backward(y, ctx.fromArray(gys, [outL.rows, tc.C], outL, dtype));
      expectClose(await grads.get(x.id)!.read(), sim.dx, dtype === 'f16' ? DX_F16 : DX, 'dx (first maximum in raster order)');
      ctx.dispose();
    });
  }

  it('routes a tie to the first maximum, an inactive zero included', async () => {
    // One image, 4x4 grid in 2x2 tiles; only the bottom-right tile is active and holds zeros
    // and one 0 at (2,2). Output (1,1) sees (1..3)x(1..3): its first max (value 0) is the
    // inactive site (1,1), so nothing reaches the active rows from it.
    const ctx = getCtx();
    const mask = new PatchMask(1, 2, 2, Uint8Array.from([0, 0, 0, 1]));
    const inL = mask.layoutAt(4, 4);
    const outL = mask.layoutAt(2, 2);
    const x = ctx.fromArray([0, 0, 0, 0], [4, 1], inL);
    x.requiresGrad = true;
    const y = maxPool2d(x);
    expect(Array.from(await y.read())).toEqual([0]);
    const grads = ctx.backward(y, ctx.fromArray([1], [1, 1], outL));
    expect(Array.from(await grads.get(x.id)!.read())).toEqual([0, 0, 0, 0]);
    ctx.dispose();
  });
});
