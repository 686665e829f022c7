/**
 * The browser half of `bench data --browser`: loads the bundled shard over HTTP, decodes and
 * crops with createImageBitmap (BitmapDecoder), and flips + normalises each batch on WebGPU,
 * reporting images per second. src/data/bench-browser.ts builds this into a page and drives
 * it in headless Chromium.
 */
import { DataLoader } from '../../data/loader.ts';
import { urlShards } from '../../data/sources.ts';
import { batchToTensor } from '../../ops/augment.ts';
import { Context } from '../../tensor/context.ts';
import { BitmapDecoder } from './data-decode.ts';
import { createBrowserGpu } from './gpu.ts';

export interface BrowserBenchOptions {
  shardUrl: string;
  images: number;
  batchSize: number;
  size: number;
  concurrency: number;
  gpu: boolean;
}

export interface BrowserBenchResult {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  waitSeconds: number;
  device: string;
  metrics: DataLoader['metrics'];
}

export async function runBrowserBench(o: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const ctx = o.gpu ? new Context(await createBrowserGpu()) : null;
  const decoder = new BitmapDecoder();
  const shards = urlShards(o.shardUrl, { retries: 2, backoffMs: 50 });
  const run = async (count: number) => {
    const loader = new DataLoader({ shards, decoder, batchSize: o.batchSize, seed: 1, shuffleBuffer: 64, augment: { size: o.size }, concurrency: o.concurrency, prefetch: 3 });
    let done = 0;
    const t0 = performance.now();
    while (done < count) {
      const batch = await loader.next();
      if (!batch) break;
      if (ctx) {
        ctx.tidy(() => void batchToTensor(ctx, batch));
        await ctx.gpu.sync();
      }
      done += batch.batch;
    }
    const seconds = (performance.now() - t0) / 1000;
    loader.close();
    return { done, seconds, loader };
  };
  await run(o.batchSize * 2);
  const { done, seconds, loader } = await run(o.images);
  const a = ctx?.gpu.adapter;
  const result = {
    images: done,
    seconds,
    imagesPerSecond: done / seconds,
    waitSeconds: loader.metrics.waitMs / 1000,
    device: a ? `${a.description || a.architecture || a.vendor}${a.isFallbackAdapter ? ' (software)' : ''}` : 'none',
    metrics: loader.metrics,
  };
  if (ctx) {
    ctx.dispose();
    ctx.gpu.destroy();
  }
  return result;
}
