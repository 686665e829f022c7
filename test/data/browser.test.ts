/**
 * The browser half in headless Chromium: the same loader code with fetch + createImageBitmap
 * makes exactly Node's decisions (order, crop boxes, flips) for a seed, and the bitmap
 * decoder crops exactly.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataPage, type DataPage } from '../../bench/data-browser.ts';
import { DataLoader } from '../../src/data/loader.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { Rng } from '../helpers/random.ts';
import { tempDir } from './helpers.ts';

const shard = new URL('../../public/data/sample-000000.tar', import.meta.url).pathname;
const tmp = tempDir('browser');
const [W, H] = [23, 17];
let raw: Buffer;
let page: DataPage;

beforeAll(async () => {
  const rng = new Rng(9);
  raw = Buffer.from(Uint8Array.from({ length: W * H * 3 }, () => rng.int(256)));
  await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(tmp.path, 'noise.png'));
  page = await openDataPage(shard, { 'noise.png': join(tmp.path, 'noise.png') });
});

afterAll(async () => {
  await page?.close();
  tmp.remove();
});

describe('data pipeline in Chromium', () => {
  it('makes the same order, boxes and flips as in Node for the same seed', async () => {
    const opts = { batchSize: 5, size: 32, seed: 3, epochs: 2 };
    const browser = (await page.page.evaluate(
      (o) => (window as unknown as { browserLoaderSummary: (o: unknown) => Promise<unknown> }).browserLoaderSummary(o),
      { ...opts, shardUrl: `${page.base}/shard.tar` },
    )) as { batches: { keys: string[]; labels: number[]; boxes: unknown[]; flips: number[]; channels: number; bytes: number }[]; metrics: { skippedDecode: number } };
    const { shards } = await nodeShards(shard);
    const loader = new DataLoader({ shards, decoder: new SharpDecoder(), shuffleBuffer: 8, augment: { size: opts.size }, ...opts });
    const node = [];
    for (let b = await loader.next(); b; b = await loader.next()) {
      node.push({ keys: b.keys, labels: [...b.labels], boxes: b.boxes, flips: [...b.flips] });
    }
    expect(browser.metrics.skippedDecode).toBe(0);
    expect(browser.batches.map(({ keys, labels, boxes, flips }) => ({ keys, labels, boxes, flips }))).toEqual(node);
    expect(browser.batches.reduce((s, b) => s + b.keys.length, 0)).toBe(48);
    for (const b of browser.batches) {
      expect(b.channels).toBe(4);
      expect(b.bytes).toBe(b.keys.length * 32 * 32 * 4);
    }
  });

  it('crops exactly with createImageBitmap when the box has the output size', async () => {
    const box = { top: 3, left: 5, width: 12, height: 12 };
    const rgba = (await page.page.evaluate(
      ([url, b]) => (window as unknown as { browserDecode: (u: string, b: unknown, s: number) => Promise<number[]> }).browserDecode(url as string, b, 12),
      [`${page.base}/files/noise.png`, box] as const,
    )) as number[];
    expect(rgba).toHaveLength(12 * 12 * 4);
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        const got = rgba.slice((y * 12 + x) * 4, (y * 12 + x) * 4 + 4);
        const at = ((y + box.top) * W + x + box.left) * 3;
        expect(got, `pixel ${x},${y}`).toEqual([raw[at], raw[at + 1], raw[at + 2], 255]);
      }
    }
  });
});
