/**
 * A profile of one replay of a recorded step: GPU time per dispatch from 'timestamp-query'.
 *
 * How: every dispatch of the replay goes into a compute pass of its own whose timestampWrites
 * put a timestamp at the pass's beginning and end; every run of non-dispatch commands between
 * two dispatches (copies, clears, host writes) is bracketed by two empty passes whose
 * end-of-pass timestamps are written once every earlier command has finished (as
 * timing.ts does). The commands, their order and their refills are those of a normal replay;
 * only the pass boundaries differ, and those cost something: one pass per dispatch adds pass
 * begin/end and barrier overhead that a normal replay (all dispatches in a few passes) does
 * not pay, so `spanMs` (first to last timestamp) is longer than the step's normal GPU time.
 * Per-dispatch times are what they are inside that setting.
 *
 * The replay is submitted every UNITS_PER_SUBMIT timed units (no submission holds the GPU for
 * long: replay-chunks.ts says why that matters), and read back once at the end.
 */
import type { CommandStream } from './command-stream.ts';
import { BufferUsage, MapMode } from './constants.ts';
import type { EagerSink } from './command-sink.ts';
import type { DeviceHealth } from './health.ts';
import { encodeRecorded } from './recorder.ts';
import type { DispatchNote, RecordedEntry, Recording } from './recording.ts';
import { writeTimestamp } from './timing.ts';

/** Queries per query set: WebGPU's limit on a timestamp query set (4096). */
const QUERIES_PER_SET = 4096;
const UNITS_PER_SUBMIT = 256;

/** One timed dispatch of the profiled replay. */
export interface ProfiledDispatch {
  kind: 'dispatch';
  /** The pipeline's `shader:entry:constants` key. */
  label: string;
  notes: readonly DispatchNote[];
  workgroups: [number, number, number];
  /** Bytes of the storage bindings (bound ranges; a read+write estimate, see bindingBytes). */
  bytes: number;
  ms: number;
}

/** One timed run of copies, clears and host writes between dispatches. */
export interface ProfiledTransfer {
  kind: 'transfer';
  /** Bytes copied, cleared or written (each counted once). */
  bytes: number;
  ms: number;
}

export type ProfiledUnit = ProfiledDispatch | ProfiledTransfer;

export interface ReplayProfile {
  units: ProfiledUnit[];
  /** GPU ms from the first timestamp to the last (includes the per-dispatch pass overhead). */
  spanMs: number;
}

/** What the profiler needs from the Gpu (src/gpu/gpu.ts). */
export interface ProfileTarget {
  readonly device: GPUDevice;
  readonly stream: CommandStream;
  readonly eager: EagerSink;
  readonly health: DeviceHealth;
}

/**
 * Bytes a dispatch's storage bindings span: each bound range (or whole buffer) once, uniforms
 * left out. An estimate of bytes read + written: a kernel may read a binding more than once
 * (from cache) or touch only part of it, and pooled buffers are rounded up to a size class.
 */
export function bindingBytes(entries: readonly RecordedEntry[]): number {
  let n = 0;
  for (const e of entries) {
    if (e.buffer.usage & BufferUsage.UNIFORM) continue;
    n += e.size ?? e.buffer.size - (e.offset ?? 0);
  }
  return n;
}

/** A [from, to) command range: one dispatch, or a run of other commands (untimed when only host bookkeeping). */
interface Unit {
  from: number;
  to: number;
  dispatch: boolean;
  timed: boolean;
}

function unitsOf(rec: Recording): Unit[] {
  const units: Unit[] = [];
  let i = 0;
  while (i < rec.commands.length) {
    if (rec.commands[i]!.kind === 'dispatch') {
      units.push({ from: i, to: i + 1, dispatch: true, timed: true });
      i++;
      continue;
    }
    const from = i;
    while (i < rec.commands.length && rec.commands[i]!.kind !== 'dispatch') i++;
    // Host bookkeeping alone does no GPU work: encoded, not timed.
    units.push({ from, to: i, dispatch: false, timed: rec.commands.slice(from, i).some((c) => c.kind !== 'host') });
  }
  return units;
}

/** Bytes a run of non-dispatch commands moves. */
function transferBytes(rec: Recording, from: number, to: number): number {
  let n = 0;
  for (const c of rec.commands.slice(from, to)) {
    if (c.kind === 'copy' || c.kind === 'clear') n += c.bytes;
    else if (c.kind === 'write') n += Math.max(0, c.bytes);
  }
  return n;
}

/** Replays `rec` once with timestamps around every unit and reads them back (the caller checks the feature). */
export async function profileReplay(t: ProfileTarget, rec: Recording): Promise<ReplayProfile> {
  t.stream.flush();
  const all = unitsOf(rec);
  const timed = all.filter((u) => u.timed);
  const perSet = QUERIES_PER_SET / 2;
  const sets = Array.from({ length: Math.ceil(timed.length / perSet) }, (_, k) =>
    t.device.createQuerySet({ type: 'timestamp', count: 2 * Math.min(perSet, timed.length - k * perSet) }),
  );
  try {
    let k = 0;
    for (const u of all) {
      if (!u.timed) {
        encodeRecorded(rec, u.from, u.to, t.eager);
        continue;
      }
      const querySet = sets[Math.floor(k / perSet)]!;
      const q = 2 * (k % perSet);
      if (u.dispatch) {
        t.stream.beginPass({ timestampWrites: { querySet, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 } });
        encodeRecorded(rec, u.from, u.to, t.eager);
        t.stream.endPass();
      } else {
        writeTimestamp(t.stream, querySet, q);
        encodeRecorded(rec, u.from, u.to, t.eager);
        writeTimestamp(t.stream, querySet, q + 1);
      }
      if (++k % UNITS_PER_SUBMIT === 0) t.stream.flush();
    }
    const ns = sets.length ? await readTimestamps(t, sets) : new BigUint64Array(0);
    return toProfile(rec, timed, ns);
  } finally {
    for (const qs of sets) qs.destroy();
  }
}

/** Resolves every query set and reads the raw timestamps back (one submit, one map). */
async function readTimestamps(t: ProfileTarget, sets: GPUQuerySet[]): Promise<BigUint64Array> {
  const bytes = sets.reduce((n, qs) => n + qs.count * 8, 0);
  const resolved = t.device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  const read = t.device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  try {
    const enc = t.stream.copyEncoder();
    let offset = 0;
    for (const qs of sets) {
      enc.resolveQuerySet(qs, 0, qs.count, resolved, offset);
      offset += qs.count * 8;
    }
    enc.copyBufferToBuffer(resolved, 0, read, 0, bytes);
    t.stream.flush();
    await read.mapAsync(MapMode.READ);
    const ns = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    await t.health.throwIfFailed();
    return ns;
  } finally {
    read.destroy();
    resolved.destroy();
  }
}

function toProfile(rec: Recording, units: Unit[], ns: BigUint64Array): ReplayProfile {
  // Differences in BigInt: raw timestamps are large enough to lose nanoseconds as doubles.
  const ms = (a: number, b: number) => Number(ns[b]! - ns[a]!) / 1e6;
  const out: ProfiledUnit[] = units.map((u, k): ProfiledUnit => {
    const time = ms(2 * k, 2 * k + 1);
    const c = rec.commands[u.from]!;
    if (u.dispatch && c.kind === 'dispatch') {
      return { kind: 'dispatch', label: c.label, notes: c.notes, workgroups: [c.x, c.y, c.z], bytes: bindingBytes(c.entries), ms: time };
    }
    return { kind: 'transfer', bytes: transferBytes(rec, u.from, u.to), ms: time };
  });
  const spanMs = units.length ? ms(0, 2 * units.length - 1) : 0;
  return { units: out, spanMs };
}
