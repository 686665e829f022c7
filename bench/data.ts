/**
 * `bench data`: images per second for decode + augment (RandomResizedCrop decode/crop/resize
 * on the CPU, then flip + normalisation on the GPU) of 224 px crops from the bundled shard,
 * in Node. The CLI wrapper calls `benchData`; `node --import tsx bench/data.ts [--no-gpu]
 * [--images N] [--batch B] [--concurrency C]` runs it directly.
 *
 * The shard has 24 photos, so the run makes several epochs (each with fresh crops); they
 * are re-read from disk each epoch, as a real run would read its shards.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DataLoader } from '../src/data/loader.ts';

export interface BenchDataOptions {
  /** Shard files or patterns (default: the bundled public/data/sample-000000.tar). */
  shards?: string | string[];
  images?: number;
  batchSize?: number;
  size?: number;
  concurrency?: number;
  /** Also upload, flip and normalise each batch on the GPU (default true). */
  gpu?: boolean;
  /** Where to print (default process.stdout). */
  print?: (line: string) => void;
}

export interface BenchDataResult {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /** Time the consumer waited for batches (the rest was GPU work). */
  waitSeconds: number;
  metrics: DataLoader['metrics'];
  device: string;
}

const DEFAULT_SHARD = fileURLToPath(new URL('../public/data/sample-000000.tar', import.meta.url));

export async function benchData(opts: BenchDataOptions = {}): Promise<BenchDataResult> {
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { nodeShards } = await import('../src/platform/node/data-sources.ts');
  const { SharpDecoder } = await import('../src/platform/node/data-decode.ts');
  const size = opts.size ?? 224;
  const batchSize = opts.batchSize ?? 32;
  const images = opts.images ?? 480;
  const useGpu = opts.gpu ?? true;
  const { shards } = await nodeShards(opts.shards ?? DEFAULT_SHARD);

  let ctx: import('../src/tensor/context.ts').Context | null = null;
  let batchToTensor: typeof import('../src/data/batch-tensor.ts').batchToTensor | null = null;
  let device = 'none (CPU decode + augment only)';
  if (useGpu) {
    const { createNodeGpu } = await import('../src/platform/node/gpu.ts');
    const { Context } = await import('../src/tensor/context.ts');
    ({ batchToTensor } = await import('../src/data/batch-tensor.ts'));
    ctx = new Context(await createNodeGpu());
    device = `${ctx.gpu.adapter.description || ctx.gpu.adapter.device || ctx.gpu.adapter.vendor}${ctx.gpu.adapter.isFallbackAdapter ? ' (software)' : ''}`;
  }

  const run = async (count: number) => {
    const loader = new DataLoader({ shards, decoder: new SharpDecoder(), batchSize, seed: 1, shuffleBuffer: 64, augment: { size }, concurrency: opts.concurrency ?? 8, prefetch: 3 });
    let done = 0;
    const t0 = performance.now();
    while (done < count) {
      const batch = await loader.next();
      if (!batch) break;
      if (ctx && batchToTensor) {
        const c = ctx;
        const f = batchToTensor;
        c.tidy(() => void f(c, batch));
        c.gpu.flush();
        // Keep at most one batch of GPU work in flight, as a training step would.
        await c.gpu.sync();
      }
      done += batch.batch;
    }
    if (ctx) await ctx.gpu.sync();
    const seconds = (performance.now() - t0) / 1000;
    loader.close();
    return { done, seconds, loader };
  };

  await run(batchSize * 2); // warm-up: pipelines, libvips, the thread pool
  const { done, seconds, loader } = await run(images);
  const result: BenchDataResult = {
    images: done,
    seconds,
    imagesPerSecond: done / seconds,
    waitSeconds: loader.metrics.waitMs / 1000,
    metrics: loader.metrics,
    device,
  };
  print(
    `bench data: ${result.imagesPerSecond.toFixed(0)} images/s (${done} images of ${size}x${size}, batch ${batchSize}, ` +
      `${seconds.toFixed(2)} s, ${result.waitSeconds.toFixed(2)} s waiting for data); decode: sharp (libvips); ` +
      `GPU flip+normalise: ${device}`,
  );
  if (ctx) {
    ctx.dispose();
    ctx.gpu.destroy();
  }
  return result;
}

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  await benchData({
    gpu: !args.includes('--no-gpu'),
    images: flag(args, '--images'),
    batchSize: flag(args, '--batch'),
    concurrency: flag(args, '--concurrency'),
  });
}
