/**
 * The data loader: ordered samples (order.ts) -> decode + crop + resize with many images in
 * flight (the platform decoder) -> batches of uint8 pixels with flip flags -> a prefetch queue.
 * The GPU side (flip + ImageNet normalisation into a feature-map tensor) is
 * `batchToTensor` in src/data/batch-tensor.ts.
 *
 * Each sample's crop box and flip come from a generator seeded by (seed, epoch, its emission
 * number), so they do not depend on timing, and a resumed run repeats them. Decodes finish in
 * any order but are taken in emission order, so batches are deterministic too. A sample that
 * fails to decode is skipped and counted; the batch is filled with the next ones.
 */
import { drawFlip, randomResizedCrop, sampleRng, SPARK_AUGMENT, type AugmentOptions, type CropBox } from './augment.ts';
import type { BitmapUpload, ImageDecoder } from './decoder.ts';
import { orderedSamples, type Emission, type ResumeCursor } from './order.ts';
import { newMetrics, noteError, type DataMetrics, type Shard } from './types.ts';

export interface LoaderOptions {
  shards: readonly Shard[];
  decoder: ImageDecoder;
  batchSize: number;
  seed?: number;
  /** Shuffle buffer in samples (default 512; each holds an encoded image, ~110 KB for ImageNet). */
  shuffleBuffer?: number;
  shuffleShards?: boolean;
  /** Stop after this many epochs (default: never); the last batch may then be smaller. */
  epochs?: number;
  /** Continue from a batch's cursor. */
  cursor?: ResumeCursor | null;
  augment?: Partial<AugmentOptions>;
  /** Decodes in flight (default 8). */
  concurrency?: number;
  /** Batches decoded ahead of `next()` (default 2). */
  prefetch?: number;
}

/** A batch on the CPU: crops resized to size x size, not yet flipped or normalised. */
export interface Batch {
  /** Images in this batch (batchSize except perhaps the last of a bounded run). */
  batch: number;
  size: number;
  channels: 3 | 4;
  /** batch x size x size x channels bytes, HWC per image (empty when `bitmaps` holds the crops). */
  pixels: Uint8Array;
  /**
   * The crops as size x size bitmaps, from a decoder that skips the CPU readback (the browser's
   * fast path), with the upload that turns them into the input tensor. Not closed by the loader:
   * they are freed when the batch is garbage (or by whoever closes them after the upload).
   */
  bitmaps?: { images: ImageBitmap[]; upload: BitmapUpload };
  /** 1 where the image is to be mirrored (done on the GPU). */
  flips: Uint8Array;
  labels: Int32Array;
  keys: string[];
  boxes: CropBox[];
  /** Resume here to get the batches after this one. */
  cursor: ResumeCursor;
  epoch: number;
  /** Milliseconds `next()` waited for this batch. */
  waitMs: number;
}

interface Decoded {
  emission: Emission;
  pixels: Uint8Array;
  bitmap?: ImageBitmap;
  box: CropBox;
  flip: boolean;
}

/** A bounded FIFO between the decoding loop and `next()`. */
class Queue<T> {
  private items: T[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  failure: Error | null = null;

  constructor(private capacity: number) {}

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.closed) await this.wait();
    if (this.closed) return false;
    this.items.push(item);
    this.wake();
    return true;
  }

  /** The next item; null once closed and empty. */
  async shift(): Promise<T | null> {
    while (this.items.length === 0 && !this.closed) await this.wait();
    if (this.items.length === 0 && this.failure) throw this.failure;
    const item = this.items.shift() ?? null;
    this.wake();
    return item;
  }

  close(failure: Error | null = null): void {
    this.closed = true;
    this.failure ??= failure;
    this.wake();
  }
}

export class DataLoader {
  readonly metrics: DataMetrics = newMetrics();
  readonly augment: AugmentOptions;
  private queue: Queue<Batch>;
  private started = false;
  private stopped = false;

  constructor(private opts: LoaderOptions) {
    if (!(opts.batchSize >= 1)) throw new Error('batchSize must be at least 1');
    this.augment = { ...SPARK_AUGMENT, ...opts.augment };
    this.queue = new Queue(Math.max(1, opts.prefetch ?? 2));
  }

  /** The next batch, or null when a bounded run has ended. */
  async next(): Promise<Batch | null> {
    if (!this.started) {
      this.started = true;
      void this.run();
    }
    const t0 = performance.now();
    const batch = await this.queue.shift();
    const waited = performance.now() - t0;
    this.metrics.waitMs += waited;
    if (!batch) return null;
    batch.waitMs = waited;
    this.metrics.samples += batch.batch;
    return batch;
  }

  /** Stops reading and decoding (open shard streams are closed). */
  close(): void {
    this.stopped = true;
    this.queue.close();
  }

  private async decodeOne(emission: Emission): Promise<Decoded | null> {
    const { sample } = emission;
    const rng = sampleRng(this.opts.seed ?? 0, emission.epoch, emission.index);
    const { size, scale, ratio, flipP } = this.augment;
    try {
      const { pixels, box, bitmap } = await this.opts.decoder.decode(sample.image, sample.format, size, (w, h) =>
        randomResizedCrop(w, h, scale, ratio, rng),
      );
      return { emission, pixels, bitmap, box, flip: drawFlip(rng, flipP) };
    } catch (err) {
      this.metrics.skippedDecode++;
      const first = String((err as Error).message ?? err).split('\n')[0];
      noteError(this.metrics, `${sample.shard}: ${sample.key}: cannot decode (${first})`);
      return null;
    }
  }

  private async run(): Promise<void> {
    const { batchSize } = this.opts;
    const { size } = this.augment;
    const channels = this.opts.decoder.channels;
    const upload = this.opts.decoder.bitmapsToTensor;
    const imageBytes = upload ? 0 : size * size * channels;
    const concurrency = Math.max(1, this.opts.concurrency ?? 8);
    let current: Batch | null = null;
    const fresh = (): Batch => ({
      batch: 0,
      size,
      channels,
      pixels: new Uint8Array(batchSize * imageBytes),
      ...(upload ? { bitmaps: { images: [], upload } } : {}),
      flips: new Uint8Array(batchSize),
      labels: new Int32Array(batchSize),
      keys: [],
      boxes: [],
      cursor: null as unknown as ResumeCursor,
      epoch: 0,
      waitMs: 0,
    });
    const take = async (d: Decoded | null): Promise<boolean> => {
      if (!d) return true;
      const b = (current ??= fresh());
      const i = b.batch++;
      if (b.bitmaps) {
        if (!d.bitmap) throw new Error('the decoder has bitmapsToTensor but gave no bitmap');
        b.bitmaps.images.push(d.bitmap);
      } else b.pixels.set(d.pixels, i * imageBytes);
      b.flips[i] = d.flip ? 1 : 0;
      b.labels[i] = d.emission.sample.label;
      b.keys.push(d.emission.sample.key);
      b.boxes.push(d.box);
      b.cursor = d.emission.cursor;
      b.epoch = d.emission.epoch;
      if (b.batch < batchSize) return true;
      current = null;
      return this.queue.push(b);
    };
    const inflight: Promise<Decoded | null>[] = [];
    try {
      const emissions = orderedSamples(
        this.opts.shards,
        {
          seed: this.opts.seed ?? 0,
          shuffleBuffer: this.opts.shuffleBuffer ?? 512,
          shuffleShards: this.opts.shuffleShards ?? true,
          epochs: this.opts.epochs ?? Infinity,
          cursor: this.opts.cursor ?? null,
        },
        this.metrics,
      );
      for await (const emission of emissions) {
        if (this.stopped) break;
        inflight.push(this.decodeOne(emission));
        if (inflight.length >= concurrency && !(await take(await inflight.shift()!))) break;
      }
      while (inflight.length > 0 && !this.stopped) if (!(await take(await inflight.shift()!))) break;
      const last = current as Batch | null;
      if (last && last.batch > 0 && !this.stopped) {
        // A bounded run ends with a smaller batch; trim the arrays to its size.
        last.pixels = last.pixels.subarray(0, last.batch * imageBytes);
        last.flips = last.flips.subarray(0, last.batch);
        last.labels = last.labels.subarray(0, last.batch);
        await this.queue.push(last);
      }
      this.queue.close();
    } catch (err) {
      this.queue.close(err as Error);
    }
  }
}
