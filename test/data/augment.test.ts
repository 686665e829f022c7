/**
 * Augmentation: RandomResizedCrop boxes against a line-by-line port of torchvision's
 * get_params (same generator, same boxes), the flip draw, and the GPU flip + normalisation
 * against a float64 reference.
 */
import { describe, expect, it } from 'vitest';
import { drawFlip, randomResizedCrop, roundHalfEven, sampleRng, SPARK_AUGMENT } from '../../src/data/augment.ts';
import { Rng } from '../../src/data/rng.ts';
import { flipNormalize } from '../../src/ops/augment.ts';
import { expectClose } from '../helpers/check.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng as TestRng } from '../helpers/random.ts';
import { flipNormalizeRef, getParams } from './reference-augment.ts';

describe('RandomResizedCrop geometry', () => {
  const { scale, ratio } = SPARK_AUGMENT;
  const sizes: [number, number][] = [
    [640, 427], [427, 640], [500, 375], [224, 224], [256, 256], [1, 1], [2, 3], [37, 5],
    // Extreme aspect ratios: the ten tries fail and the clamped centre crop is used.
    [1000, 10], [10, 1000], [3000, 200], [64, 640],
  ];

  it('gives the same boxes as torchvision get_params from the same generator', () => {
    let fallbacks = 0;
    for (const [w, h] of sizes) {
      for (let seed = 0; seed < 300; seed++) {
        const a = new Rng(seed * 7919 + w);
        const b = new Rng(seed * 7919 + w);
        const box = randomResizedCrop(w, h, scale, ratio, a);
        const [i, j, bh, bw] = getParams(w, h, scale, ratio, b);
        expect([box.top, box.left, box.height, box.width], `${w}x${h} seed ${seed}`).toEqual([i, j, bh, bw]);
        // Both consumed the same draws.
        expect(a.state).toBe(b.state);
        expect(box.top >= 0 && box.left >= 0 && box.top + box.height <= h && box.left + box.width <= w).toBe(true);
        // At these extreme ratios no try can fit (h = sqrt(area/ratio) > height): the centre crop.
        if (w / h >= 10 || h / w >= 10) {
          const cw = w > h ? Math.round(h * (4 / 3)) : w;
          const ch = w > h ? h : Math.round(w / (3 / 4));
          expect(box).toEqual({ top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw });
          fallbacks++;
        }
      }
    }
    expect(fallbacks).toBe(4 * 300);
  });

  it('samples areas in the scale range and aspect ratios in the ratio range', () => {
    const rng = new Rng(42);
    const areas: number[] = [];
    for (let k = 0; k < 2000; k++) {
      const box = randomResizedCrop(640, 480, scale, ratio, rng);
      const area = (box.width * box.height) / (640 * 480);
      areas.push(area);
      // Rounding w and h to integers moves the area and ratio by less than 1% at this size.
      expect(area).toBeGreaterThan(0.67 * 0.99);
      expect(area).toBeLessThanOrEqual(1);
      expect(box.width / box.height).toBeGreaterThan((3 / 4) * 0.99);
      expect(box.width / box.height).toBeLessThan((4 / 3) * 1.01);
    }
    const mean = areas.reduce((a, b) => a + b, 0) / areas.length;
    // Uniform area in (0.67, 1) has mean 0.835; at 4:3 a large area with a narrow ratio needs
    // h > 480 and is retried, which pulls the mean of the accepted areas below that.
    expect(mean).toBeGreaterThan(0.75);
    expect(mean).toBeLessThan(0.835);
  });

  it('rounds half to even as Python does', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7].map(roundHalfEven)).toEqual([0, 2, 2, 4, 2, 3, 7]);
  });

  it('flips about half the samples, the same ones for the same seed and position', () => {
    let flips = 0;
    for (let k = 0; k < 4000; k++) {
      const rng = sampleRng(5, 0, k);
      randomResizedCrop(500, 375, scale, ratio, rng);
      const f = drawFlip(rng, 0.5);
      flips += f ? 1 : 0;
      const again = sampleRng(5, 0, k);
      randomResizedCrop(500, 375, scale, ratio, again);
      expect(drawFlip(again, 0.5)).toBe(f);
    }
    // Binomial(4000, 0.5): 5 standard deviations is +-158.
    expect(Math.abs(flips - 2000)).toBeLessThan(158);
  });
});

describe('flip + ImageNet normalisation on the GPU', () => {
  const getCtx = useContext();
  // Each output is (v/255 - mean)/std in f32, |out| <= 2.7: two roundings of a few ulp each
  // (WGSL division is accurate to 2.5 ulp), so 1e-6 absolute covers it; 1e-5 would hide a
  // wrong mean (0.001 off moves outputs by ~4e-3).
  const TOL = { atol: 1e-6, rtol: 1e-6 };
  const cases: [number, number, number, 3 | 4, string][] = [
    [1, 1, 1, 3, 'one pixel'],
    [1, 7, 5, 3, 'batch 1, odd sizes'],
    [3, 5, 9, 3, 'RGB, mixed flips'],
    [2, 6, 11, 4, 'RGBA, alpha ignored'],
    [4, 16, 16, 3, 'every image flipped'],
    [5, 13, 3, 4, 'no image flipped'],
    // Widths divisible by 4 take flip_normalize4 (runs of 4 pixels, 8 runs a thread): a run
    // count that is not a multiple of 8, RGB word unpacking, and more than one run per thread.
    [3, 5, 8, 4, 'RGBA, width 8, mixed flips'],
    [3, 4, 12, 3, 'RGB, width 12, mixed flips'],
    [2, 3, 76, 3, 'RGB, width 76 (19 runs), mixed flips'],
    [2, 2, 40, 4, 'every image flipped, RGBA width 40'],
  ];
  for (const [B, H, W, C, label] of cases) {
    it(`${label}: ${B}x${H}x${W}x${C}`, async () => {
      const ctx = getCtx();
      const rng = new TestRng(B * 1000 + H * 10 + W);
      const pixels = Uint8Array.from({ length: B * H * W * C }, () => rng.int(256));
      pixels[0] = 0;
      pixels[pixels.length - 1] = 255;
      const flips = Uint8Array.from({ length: B }, (_, b) =>
        label.startsWith('every') ? 1 : label.startsWith('no') ? 0 : b % 2 === 0 ? 1 : 0,
      );
      const y = flipNormalize(ctx, pixels, flips, { batch: B, height: H, width: W, channels: C });
      expect(y.shape).toEqual([B * H * W, 3]);
      expect(y.layout!.isDense).toBe(true);
      expect([y.layout!.batch, y.layout!.height, y.layout!.width]).toEqual([B, H, W]);
      expectClose(await y.read(), flipNormalizeRef(pixels, flips, B, H, W, C), TOL, label);
      ctx.dispose();
    });
  }

  it('both entry points give the same bits (RGB and RGBA, mixed flips)', async () => {
    const ctx = getCtx();
    for (const C of [3, 4] as const) {
      const [B, H, W] = [3, 7, 36];
      const rng = new TestRng(77 + C);
      const pixels = Uint8Array.from({ length: B * H * W * C }, () => rng.int(256));
      const flips = Uint8Array.of(1, 0, 1);
      const shape = { batch: B, height: H, width: W, channels: C };
      const one = await flipNormalize(ctx, pixels, flips, shape, 'flip_normalize').read();
      const four = await flipNormalize(ctx, pixels, flips, shape, 'flip_normalize4').read();
      expect(Buffer.from(four.buffer).equals(Buffer.from(one.buffer)), `C=${C}`).toBe(true);
    }
    expect(() => flipNormalize(ctx, new Uint8Array(30), new Uint8Array(1), { batch: 1, height: 2, width: 5, channels: 3 }, 'flip_normalize4')).toThrow(/divisible by 4/);
    ctx.dispose();
  });

  it('rejects inconsistent sizes', () => {
    const ctx = getCtx();
    expect(() => flipNormalize(ctx, new Uint8Array(10), new Uint8Array(1), { batch: 1, height: 2, width: 2, channels: 3 })).toThrow(
      /10 bytes/,
    );
  });
});
