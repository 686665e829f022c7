/**
 * A recorded command sequence that can be encoded again without running the code that made it.
 *
 * WebGPU command buffers are single-use and compute passes have no bundles, so "replaying" a
 * training step means re-encoding its dispatches and copies from a list: pipelines, bind
 * groups, uniform data and workgroup counts are all built once. What a step must change
 * between replays is host data: each write recorded with a `refill` callback (a new mask's
 * site tables, drop-path draws, the scheduled lr) is refilled when the replay reaches it, in
 * recording order, so callbacks that draw random numbers draw them in the same order as
 * recording the step again would. Writes without one are constants; their staging buffers are
 * kept. Host-side bookkeeping the recorded code did (BatchNorm's num_batches_tracked) is
 * registered with `Gpu.hostEffect` and done again too.
 *
 * Recording runs nothing. Every transient buffer the recorded code asks for (`Gpu.buffer`) is
 * a `VirtualBuffer`: a size and an identity, no GPU memory. When recording ends, each virtual
 * buffer's live range (first to last command that uses it) is known, and `assignBuffers`
 * gives virtual buffers whose ranges do not overlap the same pooled buffer: liveness-based
 * reuse, so the step needs the most bytes live at any one command, not everything its scopes
 * held until they closed. Bind groups are made then, from the real buffers. The first replay
 * runs the step. Long-lived buffers (parameters, gradients, optimizer state: `lasting` in
 * `Gpu.buffer`) are real from the start and used in place.
 *
 * The recording owns its assigned buffers until released, so nothing outside the step can be
 * handed one that a replay will overwrite. Uniform arena chunks likewise.
 */
import type { BufferPool } from './buffer-pool.ts';

/**
 * A transient buffer of a step being recorded: what it would need, not yet memory. It stands
 * in for a GPUBuffer in the tensors the recorded code makes, and is only ever bound, copied or
 * cleared by recorded commands; mapping or destroying it is a bug, and says so.
 */
export class VirtualBuffer implements GPUBuffer {
  readonly __brand = 'GPUBuffer' as const;
  readonly mapState = 'unmapped' as const;
  released = false;
  constructor(
    readonly size: number,
    readonly usage: number,
    public label: string,
  ) {}

  mapAsync(): Promise<undefined> {
    return Promise.reject(this.noMemory('mapped'));
  }

  getMappedRange(): ArrayBuffer {
    throw this.noMemory('mapped');
  }

  unmap(): undefined {
    throw this.noMemory('unmapped');
  }

  destroy(): undefined {
    throw this.noMemory('destroyed');
  }

  private noMemory(what: string): Error {
    return new Error(`buffer '${this.label}' of a step being recorded has no memory until endRecording() and cannot be ${what}`);
  }
}

/**
 * What the code around a dispatch says about it (`Gpu.noting`): the op call it belongs to
 * (`conv.fwd`, `convTranspose2d`, ...) and, where known, that call's useful FLOPs. One note
 * object is shared by every launch of the call, so a profile counts its FLOPs once.
 */
export interface DispatchNote {
  readonly tag: string;
  readonly flops?: number;
}

export interface RecordedEntry {
  binding: number;
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export type RecordedCommand =
  | {
      kind: 'dispatch';
      pipeline: GPUComputePipeline;
      /** The pipeline's `shader:entry:constants` key, and the op notes around the launch (a profile groups by them). */
      label: string;
      notes: readonly DispatchNote[];
      layout: GPUBindGroupLayout;
      entries: RecordedEntry[];
      /** Made when recording ends, from the assigned buffers. */
      bindGroup: GPUBindGroup | null;
      x: number;
      y: number;
      z: number;
    }
  | { kind: 'copy'; src: GPUBuffer; dst: GPUBuffer; bytes: number; srcOffset: number; dstOffset: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; bytes: number }
  /** A host write: from a kept staging buffer (constant) or refilled on every replay (bytes -1 until the first). */
  | { kind: 'write'; target: GPUBuffer; offset: number; bytes: number; staging: GPUBuffer | null; refill: (() => ArrayBufferView) | null }
  /** Host bookkeeping the recorded code did (a counter), done again on every replay. */
  | { kind: 'host'; run: () => void };

export class Recording {
  readonly commands: RecordedCommand[] = [];
  readonly virtual: VirtualBuffer[] = [];
  /** Uniform arena chunks and constant staging buffers the commands read. */
  readonly ownBuffers: GPUBuffer[] = [];
  /** Pooled buffers the virtual ones were assigned to (owned by the recording). */
  assigned: GPUBuffer[] = [];
  /** Bytes live at the busiest command, by the virtual buffers' live ranges. */
  livePeakBytes = 0;
  ended = false;
  disposed = false;

  get dispatches(): number {
    let n = 0;
    for (const c of this.commands) if (c.kind === 'dispatch') n++;
    return n;
  }

  get workgroups(): number {
    let n = 0;
    for (const c of this.commands) if (c.kind === 'dispatch') n += c.x * c.y * c.z;
    return n;
  }

  /** Bytes of the pooled buffers this recording owns (its working set). */
  get assignedBytes(): number {
    let n = 0;
    for (const b of this.assigned) n += b.size;
    return n;
  }
}

/** The buffers a command reads or writes. */
export function buffersOf(c: RecordedCommand): GPUBuffer[] {
  switch (c.kind) {
    case 'dispatch':
      return c.entries.map((e) => e.buffer);
    case 'copy':
      return [c.src, c.dst];
    case 'clear':
      return [c.buffer];
    case 'write':
      return [c.target];
    case 'host':
      return [];
  }
}

/**
 * Gives every virtual buffer a pooled buffer, sharing buffers between virtual ones whose live
 * ranges do not overlap (a buffer freed after command i is reused from command i + 1 on; the
 * queue orders the dispatches, WebGPU puts barriers between them). The buffers are acquired
 * from `pool` and stay handed out (live in its accounting) while the recording lives, as
 * `rec.assigned`. Rewrites the commands to the real buffers.
 */
export function assignBuffers(rec: Recording, pool: BufferPool): void {
  const first = new Map<VirtualBuffer, number>();
  const last = new Map<VirtualBuffer, number>();
  rec.commands.forEach((c, i) => {
    for (const b of buffersOf(c)) {
      if (!(b instanceof VirtualBuffer)) continue;
      if (!first.has(b)) first.set(b, i);
      last.set(b, i);
    }
  });
  // Largest first, each into the smallest buffer already made whose other tenants' live
  // ranges do not overlap its own, else into a new one of its size: buffers are reused only
  // whole, so big tensors claim buffers first and small ones fill the gaps they leave.
  const order = [...first.keys()].sort((a, b) => b.size - a.size || first.get(a)! - first.get(b)!);
  const slots: { buffer: GPUBuffer; spans: [number, number][] }[] = []; // largest buffer first
  const real = new Map<VirtualBuffer, GPUBuffer>();
  const overlaps = (spans: [number, number][], s: number, e: number) => spans.some(([a, b]) => a <= e && s <= b);
  for (const v of order) {
    const s = first.get(v)!;
    const e = last.get(v)!;
    let slot = null;
    for (let k = slots.length - 1; k >= 0; k--) {
      // slots is sorted by size descending; scan from the smallest up.
      const c = slots[k]!;
      if (c.buffer.size >= v.size && !overlaps(c.spans, s, e)) {
        slot = c;
        break;
      }
    }
    if (!slot) {
      slot = { buffer: pool.acquire(v.size, v.usage, v.label), spans: [] };
      slots.push(slot);
      slots.sort((x, y) => y.buffer.size - x.buffer.size);
    }
    slot.spans.push([s, e]);
    real.set(v, slot.buffer);
  }
  rec.assigned = slots.map((x) => x.buffer);
  // The lower bound, for reporting: the most bytes live at one command.
  const delta = new Map<number, number>();
  for (const [v, s] of first) {
    delta.set(s, (delta.get(s) ?? 0) + v.size);
    const e = last.get(v)! + 1;
    delta.set(e, (delta.get(e) ?? 0) - v.size);
  }
  let live = 0;
  for (const at of [...delta.keys()].sort((x, y) => x - y)) {
    live += delta.get(at)!;
    rec.livePeakBytes = Math.max(rec.livePeakBytes, live);
  }
  const map = (b: GPUBuffer): GPUBuffer => {
    if (!(b instanceof VirtualBuffer)) return b;
    const r = real.get(b);
    if (!r) throw new Error(`recording: buffer '${b.label}' is used by no command`);
    return r;
  };
  for (const c of rec.commands) {
    if (c.kind === 'dispatch') c.entries = c.entries.map((e) => ({ ...e, buffer: map(e.buffer) }));
    else if (c.kind === 'copy') Object.assign(c, { src: map(c.src), dst: map(c.dst) });
    else if (c.kind === 'clear') c.buffer = map(c.buffer);
    else if (c.kind === 'write') c.target = map(c.target);
  }
}
