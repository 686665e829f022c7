/**
 * The browser half of `bench data --browser`: loads the bundled shard over HTTP, decodes and
 * crops with createImageBitmap (BitmapDecoder), and flips + normalises each batch on WebGPU,
 * reporting images per second. Paths, run interleaved in one page so they see the same load:
 * 'pixels' (what training uses: canvas getImageData readback -> buffer upload -> flipNormalize,
 * four-pixel-run entry), 'pixels-old' (the same with `flip_normalize`, one pixel per thread),
 * 'texture' (bitmaps -> copyExternalImageToTexture -> one pass; slower on SwiftShader)
 * and 'decode' (createImageBitmap alone, nothing uploaded: the ceiling the others approach).
 * bench/data-browser.ts builds this into a page and drives it in headless Chromium.
 */
import { batchToTensor } from '../src/data/batch-tensor.ts';
import { DataLoader } from '../src/data/loader.ts';
import { urlShards } from '../src/data/sources.ts';
import { flipNormalize } from '../src/ops/augment.ts';
import { Context } from '../src/tensor/context.ts';
import { BitmapDecoder } from '../src/platform/browser/data-decode.ts';
import { createBrowserGpu } from '../src/platform/browser/gpu.ts';

export interface BrowserBenchOptions {
  shardUrl: string;
  images: number;
  batchSize: number;
  size: number;
  concurrency: number;
  gpu: boolean;
  /** Paths to time, each `rounds` times, interleaved (default ['pixels']). */
  paths?: BenchPath[];
  rounds?: number;
}

export type BenchPath = 'pixels' | 'pixels-old' | 'texture' | 'decode';

export interface PathTiming {
  path: BenchPath;
  /** Images per second of each round, in order, and their median. */
  rates: number[];
  median: number;
}

export interface BrowserBenchResult {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  waitSeconds: number;
  device: string;
  metrics: DataLoader['metrics'];
  /** Every path's rounds; the fields above are the first path's median round. */
  paths: PathTiming[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

export async function runBrowserBench(o: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const ctx = o.gpu ? new Context(await createBrowserGpu()) : null;
  const paths = o.paths ?? ['pixels'];
  const decoders = {
    pixels: new BitmapDecoder(),
    'pixels-old': new BitmapDecoder(),
    texture: new BitmapDecoder({ output: 'bitmap' }),
    decode: new BitmapDecoder({ output: 'bitmap' }),
  };
  const shards = urlShards(o.shardUrl, { retries: 2, backoffMs: 50 });
  const run = async (path: BenchPath, count: number) => {
    const decoder = decoders[path];
    const loader = new DataLoader({ shards, decoder, batchSize: o.batchSize, seed: 1, shuffleBuffer: 64, augment: { size: o.size }, concurrency: o.concurrency, prefetch: 3 });
    let done = 0;
    const t0 = performance.now();
    while (done < count) {
      const batch = await loader.next();
      if (!batch) break;
      if (ctx && path !== 'decode') {
        const shape = { batch: batch.batch, height: batch.size, width: batch.size, channels: batch.channels };
        ctx.tidy(() => void (path === 'pixels-old' ? flipNormalize(ctx, batch.pixels, batch.flips, shape, 'flip_normalize') : batchToTensor(ctx, batch)));
        await ctx.gpu.sync();
      }
      for (const b of batch.bitmaps?.images ?? []) b.close();
      done += batch.batch;
    }
    const seconds = (performance.now() - t0) / 1000;
    loader.close();
    return { done, seconds, loader };
  };
  // Warm-up (pipeline compiles, decoder threads, HTTP cache) is not timed.
  for (const path of paths) await run(path, o.batchSize * 2);
  const timings = paths.map((path) => ({ path, rates: [] as number[], runs: [] as Awaited<ReturnType<typeof run>>[] }));
  for (let r = 0; r < (o.rounds ?? 1); r++) {
    for (const t of timings) {
      const one = await run(t.path, o.images);
      t.runs.push(one);
      t.rates.push(one.done / one.seconds);
    }
  }
  const first = timings[0]!;
  const m = median(first.rates);
  const { done, seconds, loader } = first.runs[first.rates.indexOf(m)]!;
  const a = ctx?.gpu.adapter;
  const result = {
    images: done,
    seconds,
    imagesPerSecond: done / seconds,
    waitSeconds: loader.metrics.waitMs / 1000,
    device: a ? `${a.description || a.architecture || a.vendor}${a.isFallbackAdapter ? ' (software)' : ''}` : 'none',
    metrics: loader.metrics,
    paths: timings.map((t) => ({ path: t.path, rates: t.rates, median: median(t.rates) })),
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

/**
 * Where the time goes: decodes one batch each way, then times `repeats` uploads of it
 * (readback + buffer upload + pass for 'pixels', texture copies + pass for 'texture'), each
 * waited for, with no decoding alongside. Milliseconds per image, median over the repeats.
 */
export async function browserUploadCost(o: { shardUrl: string; batchSize: number; size: number; repeats: number }) {
  const ctx = new Context(await createBrowserGpu());
  const out: Record<string, { readbackMs: number; gpuMs: number; uploadMs?: number }> = {};
  try {
    for (const path of ['texture', 'pixels'] as const) {
      const loader = new DataLoader({
        shards: urlShards(o.shardUrl),
        decoder: new BitmapDecoder({ output: 'bitmap' }),
        batchSize: o.batchSize,
        seed: 1,
        shuffleBuffer: 8,
        augment: { size: o.size },
      });
      const batch = (await loader.next())!;
      loader.close();
      const bitmaps = batch.bitmaps!.images;
      // The readback the pixel path does per image (drawImage + getImageData), timed alone.
      const canvas = new OffscreenCanvas(o.size, o.size);
      const c2d = canvas.getContext('2d', { willReadFrequently: true })!;
      const pixels = new Uint8Array(bitmaps.length * o.size * o.size * 4);
      const rb: number[] = [];
      for (let r = 0; r < o.repeats; r++) {
        const t0 = performance.now();
        bitmaps.forEach((b, i) => {
          c2d.clearRect(0, 0, o.size, o.size);
          c2d.drawImage(b, 0, 0);
          pixels.set(c2d.getImageData(0, 0, o.size, o.size).data, i * o.size * o.size * 4);
        });
        rb.push((performance.now() - t0) / bitmaps.length);
      }
      const pixelBatch = { ...batch, bitmaps: undefined, pixels, channels: 4 as const };
      const gpu: number[] = [];
      for (let r = 0; r < o.repeats + 1; r++) {
        const t0 = performance.now();
        ctx.tidy(() => void batchToTensor(ctx, path === 'texture' ? batch : pixelBatch));
        await ctx.gpu.sync();
        if (r > 0) gpu.push((performance.now() - t0) / bitmaps.length);
      }
      // The byte upload alone (staging buffer + copy), without the pass.
      const up: number[] = [];
      for (let r = 0; r < o.repeats + 1; r++) {
        const t0 = performance.now();
        ctx.gpu.release(ctx.gpu.upload(pixels));
        await ctx.gpu.sync();
        if (r > 0) up.push((performance.now() - t0) / bitmaps.length);
      }
      out[path] = { readbackMs: path === 'pixels' ? median(rb) : 0, gpuMs: median(gpu), ...(path === 'pixels' ? { uploadMs: median(up) } : {}) };
      for (const b of bitmaps) b.close();
    }
  } finally {
    ctx.dispose();
    ctx.gpu.destroy();
  }
  return out;
}

/**
 * For test/data/browser-texture.test.ts: one batch decoded as bitmaps, turned into the input
 * tensor by the texture path and by the byte path (each shader entry), from the same bitmaps.
 * Returns the bytes the byte path used (read back from the bitmaps), the flips and all outputs.
 */
export async function browserTextureVsBuffer(o: { shardUrl: string; batchSize: number; size: number; seed: number }) {
  const ctx = new Context(await createBrowserGpu());
  try {
    const loader = new DataLoader({
      shards: urlShards(o.shardUrl),
      decoder: new BitmapDecoder({ output: 'bitmap' }),
      batchSize: o.batchSize,
      seed: o.seed,
      shuffleBuffer: 8,
      augment: { size: o.size },
    });
    const batch = (await loader.next())!;
    loader.close();
    const { size } = batch;
    const images = batch.bitmaps!.images;
    const canvas = new OffscreenCanvas(size, size);
    const c2d = canvas.getContext('2d', { willReadFrequently: true })!;
    const pixels = new Uint8Array(images.length * size * size * 4);
    images.forEach((b, i) => {
      c2d.clearRect(0, 0, size, size);
      c2d.drawImage(b, 0, 0);
      pixels.set(c2d.getImageData(0, 0, size, size).data, i * size * size * 4);
    });
    const shape = { batch: batch.batch, height: size, width: size, channels: 4 as const };
    // Twice through the texture: the second upload reuses the texture while the first pass's
    // result is still unread, so a wrong ordering of copies and passes would show.
    const texture = batchToTensor(ctx, batch);
    const again = batchToTensor(ctx, { ...batch, flips: batch.flips.map((f) => 1 - f) });
    const perPixel = flipNormalize(ctx, pixels, batch.flips, shape, 'flip_normalize');
    const runs = size % 4 === 0 ? flipNormalize(ctx, pixels, batch.flips, shape, 'flip_normalize4') : null;
    const read = async (t: { read(): Promise<Float32Array> } | null) => (t ? [...new Uint32Array((await t.read()).buffer)] : null);
    const out = {
      pixels: [...pixels],
      flips: [...batch.flips],
      batch: batch.batch,
      texture: (await read(texture))!,
      textureFlipped: (await read(again))!,
      perPixel: (await read(perPixel))!,
      runs: await read(runs),
    };
    for (const b of images) b.close();
    return out;
  } finally {
    ctx.dispose();
    ctx.gpu.destroy();
  }
}
