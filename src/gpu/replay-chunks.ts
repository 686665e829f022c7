/**
 * Watchdog-safe replays: a recorded step is submitted in chunks whose measured GPU time stays
 * under a budget, so a slow GPU never holds one submission for seconds. Windows resets a GPU
 * whose single submission runs longer than about 2 s (TDR), other drivers have similar
 * watchdogs, and a reset loses the device and everything on it.
 *
 * How: the first replay of a recording is profiled. Its commands are cut into at most
 * MAX_SEGMENTS segments of about equal dispatch count, each submitted on its own and ending
 * with a GPU timestamp (an empty compute pass whose end-of-pass timestamp is written once every
 * earlier command has finished, as `Gpu.timeOnGpu` does), or, where the device has no
 * 'timestamp-query', by `onSubmittedWorkDone` and the wall clock (an overestimate: it includes
 * the submission's latency, so it errs toward more chunks). The times arrive asynchronously:
 * nothing waits for them. Later replays group consecutive segments greedily into chunks whose
 * measured time fits the budget and submit each chunk (`Gpu.flush`): the last chunk goes out
 * with whatever the caller submits next (the trainer's report read), so a step of k chunks
 * costs k submits, and a step that fits the budget stays one submit. Until the times are in,
 * replays submit segment by segment (safe without knowing).
 *
 * The commands, their order and their refills are those of an unchunked replay: only where
 * the queue submissions begin and end changes, so the results are bit for bit the same
 * (test/gpu/replay-chunks.test.ts).
 *
 * Software adapters (SwiftShader, lavapipe, WARP) run on CPU threads with no GPU watchdog:
 * there the budget is off by default (`budgetMs` null), and a step is one submit as before.
 * One dispatch cannot be split: a single kernel longer than the budget stays one chunk.
 */
import { BufferUsage, MapMode } from './constants.ts';
import type { Recording } from './recording.ts';

/** Default longest measured GPU time of one submission of a replayed step, in ms. */
export const DEFAULT_STEP_BUDGET_MS = 500;
/** Segments a step is cut into to be measured: the granularity of the chunks. */
export const MAX_SEGMENTS = 256;

/** What the chunker needs from the Gpu (src/gpu/gpu.ts). */
export interface ReplayTarget {
  readonly device: GPUDevice;
  readonly features: ReadonlySet<string>;
  /** Encodes commands [from, to) of a finished recording into the current command stream. */
  encodeReplay(rec: Recording, from: number, to: number): void;
  /** Submits everything encoded so far (one queue submit). */
  flush(): void;
  /** Encodes a timestamp written once every earlier command has finished. */
  writeTimestamp(querySet: GPUQuerySet, index: number): void;
}

export interface ChunkPlan {
  /** Command index (exclusive) where each measured segment ends; the last is the command count. */
  segmentEnds: number[];
  /** GPU ms of each segment in the profiled replay; null until the measurement is back. */
  segmentMs: number[] | null;
  /** How the segments were timed. */
  timing: 'timestamps' | 'wall';
}

/**
 * Greedy chunking of measured segments: the command index (exclusive) where each chunk ends.
 * A chunk takes segments while their sum stays within `budgetMs`; a segment over the budget by
 * itself is a chunk of its own.
 */
export function chunkEnds(segmentEnds: readonly number[], segmentMs: readonly number[], budgetMs: number): number[] {
  const ends: number[] = [];
  let sum = 0;
  for (let i = 0; i < segmentEnds.length; i++) {
    const t = segmentMs[i]!;
    if (i > 0 && sum + t > budgetMs) {
      ends.push(segmentEnds[i - 1]!);
      sum = 0;
    }
    sum += t;
  }
  if (segmentEnds.length > 0) ends.push(segmentEnds[segmentEnds.length - 1]!);
  return ends;
}

/** Segment ends at about equal numbers of dispatches (at most MAX_SEGMENTS segments). */
export function segmentEndsOf(rec: Recording, maxSegments = MAX_SEGMENTS): number[] {
  const dispatchIndex: number[] = [];
  rec.commands.forEach((c, i) => {
    if (c.kind === 'dispatch') dispatchIndex.push(i);
  });
  const n = rec.commands.length;
  if (dispatchIndex.length === 0) return n > 0 ? [n] : [];
  const segments = Math.min(maxSegments, dispatchIndex.length);
  const ends: number[] = [];
  for (let s = 1; s < segments; s++) {
    // The segment ends right after its last dispatch; copies before the next dispatch go with the next.
    const end = dispatchIndex[Math.round((s * dispatchIndex.length) / segments) - 1]! + 1;
    if (end > (ends[ends.length - 1] ?? 0)) ends.push(end);
  }
  ends.push(n);
  return ends;
}

export class ReplayChunking {
  /** Longest measured GPU ms per submission; null: never split (one submit per replay). */
  budgetMs: number | null;
  /** Time segments with the wall clock even where timestamps exist (tests of the fallback). */
  forceWallClock = false;
  /** The plan of the recording replayed last (tests and diagnostics read it). */
  lastPlan: ChunkPlan | null = null;
  private plans = new WeakMap<Recording, ChunkPlan>();

  constructor(
    private gpu: ReplayTarget,
    softwareAdapter: boolean,
  ) {
    this.budgetMs = softwareAdapter ? null : DEFAULT_STEP_BUDGET_MS;
  }

  /** The submission boundaries (exclusive command indices) the next replay of `rec` uses. */
  chunksOf(rec: Recording): number[] {
    const plan = this.plans.get(rec);
    if (this.budgetMs === null || !plan) return [rec.commands.length];
    return plan.segmentMs ? chunkEnds(plan.segmentEnds, plan.segmentMs, this.budgetMs) : plan.segmentEnds;
  }

  /** Encodes one replay of `rec`, submitting between chunks (see the file comment). */
  replay(rec: Recording): void {
    const n = rec.commands.length;
    if (this.budgetMs === null) {
      this.gpu.encodeReplay(rec, 0, n);
      return;
    }
    let plan = this.plans.get(rec);
    if (!plan) {
      plan = { segmentEnds: segmentEndsOf(rec), segmentMs: null, timing: this.timing() };
      this.plans.set(rec, plan);
      this.lastPlan = plan;
      this.profile(rec, plan);
      return;
    }
    this.lastPlan = plan;
    const ends = this.chunksOf(rec);
    let from = 0;
    for (const end of ends) {
      this.gpu.encodeReplay(rec, from, end);
      // The last chunk rides on the caller's next submit (the step's report read).
      if (end < n) this.gpu.flush();
      from = end;
    }
  }

  private timing(): ChunkPlan['timing'] {
    return this.gpu.features.has('timestamp-query') && !this.forceWallClock ? 'timestamps' : 'wall';
  }

  /** The measured replay: each segment its own submit, followed by a timestamp or a done-callback. */
  private profile(rec: Recording, plan: ChunkPlan): void {
    const { device } = this.gpu;
    const count = plan.segmentEnds.length;
    const stamps = plan.timing === 'timestamps' ? new TimestampMarks(device, count + 1) : null;
    const doneAt: Promise<number>[] = [];
    // A timestamp rides in the submission it ends; a done-callback follows it.
    const submit = () => {
      if (stamps) this.gpu.writeTimestamp(stamps.querySet, stamps.next++);
      this.gpu.flush();
      if (!stamps) doneAt.push(device.queue.onSubmittedWorkDone().then(() => performance.now()));
    };
    submit(); // marks when everything before the step has finished
    let from = 0;
    for (const end of plan.segmentEnds) {
      this.gpu.encodeReplay(rec, from, end);
      submit();
      from = end;
    }
    const times = stamps ? stamps.read() : Promise.all(doneAt);
    times.then(
      (t) => {
        const ms = t.slice(1).map((x, k) => x - t[k]!);
        // A device that writes bad timestamps (zeros, going backwards): measure by wall clock next time.
        if (stamps && !ms.every((x) => Number.isFinite(x) && x >= 0) && !this.forceWallClock) {
          this.forceWallClock = true;
          this.plans.delete(rec);
          return;
        }
        plan.segmentMs = ms;
      },
      () => {
        // The device was lost meanwhile: the next Gpu profiles its own recordings.
      },
    );
  }
}

/** Timestamps written at the end of each submission, resolved and read back once, asynchronously. */
class TimestampMarks {
  readonly querySet: GPUQuerySet;
  /** The index the next timestamp goes to. */
  next = 0;

  constructor(
    private device: GPUDevice,
    private count: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count });
  }

  /** Milliseconds of each mark since the first (resolves after the GPU has written the last). */
  async read(): Promise<number[]> {
    const bytes = this.count * 8;
    const resolved = this.device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
    const read = this.device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(this.querySet, 0, this.count, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, read, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    try {
      await read.mapAsync(MapMode.READ);
      const ns = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      // Differences taken in BigInt: raw timestamps are large enough to lose nanoseconds as doubles.
      return [...ns].map((t) => Number(t - ns[0]!) / 1e6);
    } finally {
      read.destroy();
      resolved.destroy();
      this.querySet.destroy();
    }
  }
}
