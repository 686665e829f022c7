/**
 * Decode + augment + batching: the sharp decoder (crop, resize, colour handling, bad files),
 * the loader's counts with a corrupt JPEG and non-image members, determinism, and resuming
 * from a batch's cursor.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLoader, type Batch, type LoaderOptions } from '../../src/data/loader.ts';
import type { ResumeCursor } from '../../src/data/order.ts';
import { batchToTensor } from '../../src/data/batch-tensor.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { imageSize } from '../../src/data/image-size.ts';
import { expectClose } from '../helpers/check.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng } from '../helpers/random.ts';
import { gnuTar, jpeg, tempDir, writeTree } from './helpers.ts';
import { flipNormalizeRef } from './reference-augment.ts';

const decoder = new SharpDecoder();
const whole = (w: number, h: number) => ({ top: 0, left: 0, width: w, height: h });

describe('sharp decoder', () => {
  it('crops exactly: a box of the output size comes back pixel for pixel', async () => {
    const rng = new Rng(3);
    const [w, h] = [13, 9];
    const raw = Buffer.from(Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)));
    const png = new Uint8Array(await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
    const box = { top: 1, left: 4, width: 6, height: 6 };
    const out = await decoder.decode(png, 'png', 6, () => box);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        for (let c = 0; c < 3; c++) {
          expect(out.pixels[(y * 6 + x) * 3 + c]).toBe(raw[((y + 1) * w + x + 4) * 3 + c]);
        }
      }
    }
    expect(out.box).toEqual(box);
  });

  it('resizes to the square size; grey becomes RGB, alpha is dropped', async () => {
    const grey = new Uint8Array(await sharp(Buffer.alloc(40 * 30, 100), { raw: { width: 40, height: 30, channels: 1 } }).png().toBuffer());
    const g = await decoder.decode(grey, 'png', 8, whole);
    expect(g.pixels.length).toBe(8 * 8 * 3);
    expect(new Set(g.pixels)).toEqual(new Set([100]));
    const rgba = Buffer.alloc(20 * 10 * 4);
    for (let i = 0; i < 200; i++) rgba.set([200, 50, 10, 128], i * 4);
    const png = new Uint8Array(await sharp(rgba, { raw: { width: 20, height: 10, channels: 4 } }).png().toBuffer());
    const c = await decoder.decode(png, 'png', 5, whole);
    expect(c.pixels.length).toBe(5 * 5 * 3);
    // libvips resizes with premultiplied alpha, which can round a colour down by 1 where
    // PIL (convert('RGB') first) keeps it; a wrong channel order or a blend would be far off.
    const px = [...c.pixels.subarray(0, 3)];
    [200, 50, 10].forEach((v, i) => expect(Math.abs(px[i]! - v)).toBeLessThanOrEqual(1));
    // A gradient keeps its direction through a 4x downscale (bicubic, antialiased).
    const img = await jpeg(64, 64, 0, 95);
    const d = await decoder.decode(img, 'jpg', 16, whole);
    expect(d.pixels[(0 * 16 + 15) * 3]!).toBeGreaterThan(d.pixels[(0 * 16 + 0) * 3]! + 150);
    expect(d.pixels[(15 * 16 + 0) * 3 + 1]!).toBeGreaterThan(d.pixels[(0 * 16 + 0) * 3 + 1]! + 150);
  });

  it('rejects garbage, truncated JPEGs and empty files', async () => {
    const good = await jpeg(32, 24, 1);
    await expect(decoder.decode(good.subarray(0, good.length - 100), 'jpg', 8, whole)).rejects.toThrow();
    await expect(decoder.decode(Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 255), 'jpg', 8, whole)).rejects.toThrow();
    await expect(decoder.decode(new Uint8Array(0), 'jpg', 8, whole)).rejects.toThrow(/empty/);
  });

  it('reads dimensions from headers without decoding', async () => {
    const base = sharp({ create: { width: 37, height: 21, channels: 3, background: { r: 1, g: 2, b: 3 } } });
    for (const fmt of ['jpeg', 'png', 'webp', 'gif'] as const) {
      const buf = new Uint8Array(await base.clone().toFormat(fmt).toBuffer());
      expect(imageSize(buf), fmt).toEqual({ width: 37, height: 21 });
    }
    const lossless = new Uint8Array(await base.clone().webp({ lossless: true }).toBuffer());
    expect(imageSize(lossless)).toEqual({ width: 37, height: 21 });
    expect(imageSize(new Uint8Array(40))).toBeNull();
  });
});

// ---- the loader ------------------------------------------------------------------------------

const tmp = tempDir('loader');
let shardsPattern = '';
const N_GOOD = 22;

beforeAll(async () => {
  // Two WebDataset shards of small real JPEGs; one corrupt JPEG, one stray text file.
  for (const [s, range] of [
    [0, [0, 12]],
    [1, [12, N_GOOD]],
  ] as const) {
    const files: Record<string, Uint8Array | string> = {};
    for (let i = range[0]; i < range[1]; i++) {
      const key = `img_${String(i).padStart(3, '0')}`;
      files[`${key}.jpg`] = await jpeg(24 + (i % 5) * 6, 20 + (i % 3) * 7, i);
      files[`${key}.cls`] = String(i);
    }
    if (s === 0) {
      files['bad_000.jpg'] = Uint8Array.from({ length: 500 }, (_, i) => (i * 13) & 255);
      files['bad_000.cls'] = '999';
      files['notes.txt'] = 'hello';
    }
    const dir = join(tmp.path, `src${s}`);
    writeTree(dir, files);
    gnuTar(dir, ['--format=gnu', '-cf', join(tmp.path, `part-${s}.tar`), ...Object.keys(files)]);
  }
  shardsPattern = join(tmp.path, 'part-{0..1}.tar');
});
afterAll(() => tmp.remove());

async function loader(extra: Partial<LoaderOptions> = {}): Promise<DataLoader> {
  const { shards } = await nodeShards(shardsPattern);
  return new DataLoader({
    shards,
    decoder,
    batchSize: 4,
    seed: 11,
    shuffleBuffer: 6,
    epochs: 2,
    augment: { size: 16 },
    concurrency: 5,
    prefetch: 2,
    ...extra,
  });
}

async function drain(l: DataLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let b = await l.next(); b; b = await l.next()) out.push(b);
  return out;
}

const view = (b: Batch) => ({
  keys: b.keys,
  labels: [...b.labels],
  flips: [...b.flips],
  boxes: b.boxes,
  pixels: Buffer.from(b.pixels).toString('base64'),
});

describe('DataLoader', () => {
  it('delivers every good sample per epoch, skips and counts the corrupt one and the stray file', async () => {
    const l = await loader();
    const batches = await drain(l);
    const keys = batches.flatMap((b) => b.keys);
    expect(keys).toHaveLength(2 * N_GOOD);
    expect(new Set(keys.slice(0, N_GOOD)).size).toBe(N_GOOD);
    expect(keys).not.toContain('bad_000');
    expect(batches.slice(0, -1).every((b) => b.batch === 4)).toBe(true);
    expect(batches.at(-1)!.batch).toBe((2 * N_GOOD) % 4 || 4);
    for (const b of batches) {
      expect(b.pixels.length).toBe(b.batch * 16 * 16 * 3);
      b.keys.forEach((k, i) => expect(b.labels[i]).toBe(Number(k.slice(4))));
    }
    expect(l.metrics.samples).toBe(2 * N_GOOD);
    expect(l.metrics.skippedDecode).toBe(2); // once per epoch
    expect(l.metrics.ignoredEntries).toBe(2);
    expect(l.metrics.skippedShards).toBe(0);
    expect(l.metrics.errors[0]).toMatch(/^part-0\.tar: bad_000: cannot decode/);
    expect(batches.every((b) => b.waitMs >= 0)).toBe(true);
    expect(l.metrics.waitMs).toBeGreaterThanOrEqual(batches.reduce((s, b) => s + b.waitMs, 0) - 1e-6);
    // Flips happen and do not happen.
    const flips = batches.flatMap((b) => [...b.flips]);
    expect(flips).toContain(0);
    expect(flips).toContain(1);
  });

  it('is deterministic for a seed, whatever the decode timing', async () => {
    const a = await drain(await loader({ concurrency: 1, prefetch: 1 }));
    const b = await drain(await loader({ concurrency: 7, prefetch: 3 }));
    expect(b.map(view)).toEqual(a.map(view));
    const c = await drain(await loader({ seed: 12 }));
    expect(c.map((x) => x.keys)).not.toEqual(a.map((x) => x.keys));
  });

  it('resumes from a batch cursor with exactly the batches that followed it', async () => {
    const full = await drain(await loader());
    for (const k of [0, 3, 5, full.length - 2]) {
      const cursor = JSON.parse(JSON.stringify(full[k]!.cursor)) as ResumeCursor;
      const rest = await drain(await loader({ cursor }));
      expect(rest.map(view), `after batch ${k}`).toEqual(full.slice(k + 1).map(view));
    }
  });

  describe('on the GPU', () => {
    const getCtx = useContext();
    it('turns a batch into the flipped, normalised dense feature map', async () => {
      const l = await loader({ epochs: 1 });
      const b = (await l.next())!;
      l.close();
      const ctx = getCtx();
      const x = batchToTensor(ctx, b);
      expect(x.shape).toEqual([4 * 16 * 16, 3]);
      // Same bound as in augment.test.ts: a few f32 ulp of values below 2.7.
      expectClose(await x.read(), flipNormalizeRef(b.pixels, b.flips, 4, 16, 16, 3), { atol: 1e-6, rtol: 1e-6 }, 'batch');
      ctx.dispose();
    });
  });
});
