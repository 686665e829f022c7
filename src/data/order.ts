/**
 * The order of samples: each epoch visits the shards in a seeded permutation and passes the
 * samples through a seeded shuffle buffer, and every emitted sample carries a resume cursor.
 *
 * Shuffle buffer (size N): read samples fill the buffer; once it is full, each newly read
 * sample replaces a uniformly chosen slot whose sample is emitted. At the end of the epoch the
 * buffer drains: a chosen slot is emitted and the last slot moves into it. So an epoch emits
 * every readable sample exactly once and epochs do not mix.
 *
 * Resume cursor semantics. Samples read in an epoch are numbered 0, 1, 2... in read order (their
 * read ordinal). The cursor taken after an emission holds: where the reader is (shardIndex =
 * position in the epoch's permutation, samplesConsumed = the shard-local index to continue
 * at), how many samples were read and emitted in the epoch, the shuffle generator's state,
 * and the read ordinal of the sample in each buffer slot. Restarting re-reads the stream from
 * the oldest buffered sample (`refill`) up to the reader's position, puts the samples whose
 * ordinals the cursor lists back into their slots and drops the others (they were emitted
 * before); then it goes on exactly as the uninterrupted run. Re-reading costs at most the span
 * of the buffer (a few shards), and no decoding. This is exact as long as the shards read the
 * same as before (a shard that fails differently shifts the ordinals; slots not found are
 * dropped).
 */
import { mixSeed, permutation, Rng, Stream } from './rng.ts';
import { noteError, type DataMetrics, type Sample, type Shard } from './types.ts';

export interface ResumeCursor {
  version: 1;
  seed: number;
  epoch: number;
  /** The reader's shard: its position in this epoch's permutation (numShards once all are read). */
  shardIndex: number;
  /** Samples consumed from that shard: the shard-local index to continue at. */
  samplesConsumed: number;
  /** Samples read this epoch. */
  read: number;
  /** Samples emitted this epoch (also numbers them for their augmentation seeds). */
  emitted: number;
  /** The shuffle generator's state. */
  rng: number;
  /** Read ordinal of the sample in each shuffle-buffer slot, in slot order. */
  buffer: number[];
  /** Where the oldest buffered sample was read; a restart re-reads from here. */
  refill: { shardIndex: number; samplesConsumed: number; read: number };
  /** For checking that a cursor fits the dataset and settings it is used with. */
  numShards: number;
  bufferSize: number;
}

export interface OrderOptions {
  seed: number;
  /** Shuffle buffer size in samples (0 or 1: no sample shuffle). */
  shuffleBuffer: number;
  /** Shard order shuffled per epoch (default true). */
  shuffleShards?: boolean;
  /** Epochs to run (default unbounded). */
  epochs?: number;
  /** Continue from this cursor. */
  cursor?: ResumeCursor | null;
}

/** One sample leaving the shuffle buffer. */
export interface Emission {
  sample: Sample;
  epoch: number;
  /** Its number among the epoch's emissions. */
  index: number;
  /** The state after this emission: restarting from it yields the samples after this one. */
  cursor: ResumeCursor;
}

interface Entry {
  sample: Sample;
  ordinal: number;
  shardIndex: number;
}

export function shardOrder(numShards: number, seed: number, epoch: number, shuffle = true): number[] {
  if (!shuffle) return Array.from({ length: numShards }, (_, i) => i);
  return permutation(numShards, new Rng(mixSeed(seed, Stream.shardOrder, epoch)));
}

function checkCursor(c: ResumeCursor, numShards: number, opts: OrderOptions): void {
  if (c.version !== 1) throw new Error(`resume cursor: unknown version ${c.version}`);
  if (c.numShards !== numShards || c.seed !== opts.seed || c.bufferSize !== Math.max(1, opts.shuffleBuffer)) {
    throw new Error(
      `resume cursor was made for ${c.numShards} shards, seed ${c.seed}, shuffle buffer ${c.bufferSize}; ` +
        `this run has ${numShards} shards, seed ${opts.seed}, shuffle buffer ${Math.max(1, opts.shuffleBuffer)}`,
    );
  }
}

/** The ordered, shuffled sample stream (see the file comment). */
export async function* orderedSamples(
  shards: readonly Shard[],
  opts: OrderOptions,
  metrics: DataMetrics,
): AsyncGenerator<Emission> {
  const size = Math.max(1, opts.shuffleBuffer);
  const epochs = opts.epochs ?? Infinity;
  let resume = opts.cursor ?? null;
  if (resume) checkCursor(resume, shards.length, opts);
  for (let epoch = resume?.epoch ?? 0; epoch < epochs; epoch++) {
    const perm = shardOrder(shards.length, opts.seed, epoch, opts.shuffleShards ?? true);
    const rng = new Rng(resume ? resume.rng : mixSeed(opts.seed, Stream.shuffle, epoch));
    let buffer: (Entry | undefined)[] = [];
    let read = 0;
    let emitted = 0;
    let p = 0;
    let start = 0;
    // Restoring: ordinals below `replayUntil` were read before the cursor; those listed in
    // `slotOf` go back into their slots, the others were already emitted.
    let replayUntil = 0;
    let slotOf = new Map<number, number>();
    if (resume) {
      const from = resume.buffer.length ? resume.refill : resume;
      p = from.shardIndex;
      start = from.samplesConsumed;
      read = from.read;
      emitted = resume.emitted;
      replayUntil = resume.read;
      slotOf = new Map(resume.buffer.map((ordinal, slot) => [ordinal, slot]));
      buffer = new Array<Entry | undefined>(resume.buffer.length);
      resume = null;
    }
    const settle = () => {
      // Slots whose samples were not found again (the data changed) are dropped.
      if (replayUntil > 0 && buffer.some((e) => e === undefined)) buffer = buffer.filter((e) => e !== undefined);
      replayUntil = 0;
    };
    const cursor = (shardIndex: number, samplesConsumed: number): ResumeCursor => {
      let oldest: Entry | undefined;
      const ordinals = new Array<number>(buffer.length);
      for (let k = 0; k < buffer.length; k++) {
        const e = buffer[k]!;
        ordinals[k] = e.ordinal;
        if (!oldest || e.ordinal < oldest.ordinal) oldest = e;
      }
      return {
        version: 1,
        seed: opts.seed,
        epoch,
        shardIndex,
        samplesConsumed,
        read,
        emitted,
        rng: rng.state,
        buffer: ordinals,
        refill: oldest
          ? { shardIndex: oldest.shardIndex, samplesConsumed: oldest.sample.index, read: oldest.ordinal }
          : { shardIndex, samplesConsumed, read },
        numShards: shards.length,
        bufferSize: size,
      };
    };

    for (; p < perm.length; p++, start = 0) {
      const shard = shards[perm[p]!]!;
      try {
        for await (const sample of shard.samples(start, metrics)) {
          const entry: Entry = { sample, ordinal: read++, shardIndex: p };
          if (entry.ordinal < replayUntil) {
            const slot = slotOf.get(entry.ordinal);
            if (slot !== undefined) buffer[slot] = entry;
            continue;
          }
          settle();
          if (buffer.length < size) {
            buffer.push(entry);
            continue;
          }
          const j = rng.int(0, size);
          const out = buffer[j]!;
          buffer[j] = entry;
          emitted++;
          yield { sample: out.sample, epoch, index: emitted - 1, cursor: cursor(p, sample.index + 1) };
        }
      } catch (err) {
        metrics.skippedShards++;
        noteError(metrics, (err as Error).message);
      }
    }
    settle();
    while (buffer.length > 0) {
      const j = rng.int(0, buffer.length);
      const out = buffer[j]!;
      buffer[j] = buffer[buffer.length - 1];
      buffer.pop();
      emitted++;
      yield { sample: out.sample, epoch, index: emitted - 1, cursor: cursor(perm.length, 0) };
    }
    if (read === 0 && emitted === 0) throw new Error(`epoch ${epoch}: no sample could be read from ${shards.length} shards`);
  }
}
