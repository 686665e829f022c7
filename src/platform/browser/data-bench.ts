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

/** The loader's decisions in the browser (for checking them against Node's): keys, labels, boxes, flips per batch. */
export async function browserLoaderSummary(o: { shardUrl: string; batchSize: number; size: number; seed: number; epochs: number }) {
  const loader = new DataLoader({
    shards: urlShards(o.shardUrl),
    decoder: new BitmapDecoder(),
    batchSize: o.batchSize,
    seed: o.seed,
    epochs: o.epochs,
    shuffleBuffer: 8,
    augment: { size: o.size },
  });
  const out: { keys: string[]; labels: number[]; boxes: unknown[]; flips: number[]; channels: number; bytes: number }[] = [];
  for (let b = await loader.next(); b; b = await loader.next()) {
    out.push({ keys: b.keys, labels: [...b.labels], boxes: b.boxes, flips: [...b.flips], channels: b.channels, bytes: b.pixels.length });
  }
  return { batches: out, metrics: loader.metrics };
}

/** Decodes the image at `url` with BitmapDecoder and a fixed box; returns the RGBA bytes. */
export async function browserDecode(url: string, box: { top: number; left: number; width: number; height: number }, size: number): Promise<number[]> {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const format = url.endsWith('.png') ? 'png' : 'jpg';
  return [...(await new BitmapDecoder().decode(bytes, format, size, () => box)).pixels];
}
