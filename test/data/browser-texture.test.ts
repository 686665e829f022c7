/**
 * The browser's texture upload (ImageBitmap -> copyExternalImageToTexture -> one pass) in
 * headless Chromium: for the same crops and flips it gives exactly (bit for bit) the tensor
 * the byte path gives with either shader entry, and that tensor matches the float64 CPU
 * reference of torchvision's ToTensor + Normalize.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataPage, type DataPage } from '../../bench/data-browser.ts';
import { expectClose } from '../helpers/check.ts';
import { flipNormalizeRef } from './reference-augment.ts';

const shard = new URL('../../public/data/sample-000000.tar', import.meta.url).pathname;
let page: DataPage;

beforeAll(async () => {
  page = await openDataPage(shard);
});

afterAll(async () => {
  await page?.close();
});

interface Outputs {
  pixels: number[];
  flips: number[];
  batch: number;
  texture: number[];
  textureFlipped: number[];
  perPixel: number[];
  runs: number[] | null;
}

const f32 = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

describe('texture upload in Chromium', () => {
  // 32: the byte path's four-pixel-run entry applies; 30: only the one-pixel entry does.
  for (const size of [32, 30]) {
    it(`gives the byte path's tensor bit for bit, ${size} px crops`, async () => {
      const o = (await page.page.evaluate(
        (a) => (window as unknown as { browserTextureVsBuffer: (a: unknown) => Promise<unknown> }).browserTextureVsBuffer(a),
        { shardUrl: `${page.base}/shard.tar`, batchSize: 6, size, seed: 5 },
      )) as Outputs;
      expect(o.batch).toBe(6);
      // Both kinds of image, so the flip is exercised either way.
      expect(o.flips.some((f) => f === 1) && o.flips.some((f) => f === 0)).toBe(true);
      expect(o.texture).toHaveLength(6 * size * size * 3);
      expect(o.texture).toEqual(o.perPixel);
      if (size % 4 === 0) expect(o.runs).toEqual(o.perPixel);
      // (v/255 - mean)/std in f32 against float64: a few ulp of |x| <= 2.7 (see augment.test.ts).
      const pixels = Uint8Array.from(o.pixels);
      expectClose(f32(o.texture), flipNormalizeRef(pixels, o.flips, 6, size, size, 4), { atol: 1e-6, rtol: 1e-6 }, 'texture vs CPU');
      const other = o.flips.map((f) => 1 - f);
      expectClose(f32(o.textureFlipped), flipNormalizeRef(pixels, other, 6, size, size, 4), { atol: 1e-6, rtol: 1e-6 }, 'second upload');
    });
  }
});
