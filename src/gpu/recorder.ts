/**
 * Recording a step (recording.ts says what a recording is): `Recorder` is the command sink
 * that keeps every command instead of encoding it, `finishRecording` gives the result memory
 * and bind groups, and `encodeRecorded` encodes a range of it again through the eager sink.
 */
import { sizeClass, STORAGE_USAGE, type BufferPool } from './buffer-pool.ts';
import { bindEntry, type CommandSink, type EagerSink, type HostData } from './command-sink.ts';
import type { Pipeline } from './pipelines.ts';
import { assignBuffers, Recording, VirtualBuffer, type DispatchNote, type RecordedEntry } from './recording.ts';
import { stagingWith } from './staging.ts';

export class Recorder implements CommandSink {
  readonly recording = new Recording();

  constructor(private device: GPUDevice) {}

  /** A virtual buffer: the recording assigns memory by liveness when it ends. */
  transientBuffer(bytes: number, label: string | undefined): GPUBuffer {
    const v = new VirtualBuffer(sizeClass(bytes), STORAGE_USAGE, label ?? 'transient');
    this.recording.virtual.push(v);
    return v;
  }

  dispatch(p: Pipeline, entries: RecordedEntry[], x: number, y: number, z: number, notes: readonly DispatchNote[] = []): void {
    this.recording.commands.push({ kind: 'dispatch', pipeline: p.pipeline, label: p.label, notes, layout: p.layout, entries, bindGroup: null, x, y, z });
  }

  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset: number, dstOffset: number): void {
    this.recording.commands.push({ kind: 'copy', src, dst, bytes, srcOffset, dstOffset });
  }

  clear(buffer: GPUBuffer, offset: number, bytes: number): void {
    this.recording.commands.push({ kind: 'clear', buffer, offset, bytes });
  }

  /** A function is refilled on every replay; a view is a constant whose staging buffer is kept. */
  write(target: GPUBuffer, source: HostData, offset: number): void {
    const rec = this.recording;
    if (typeof source === 'function') {
      rec.commands.push({ kind: 'write', target, offset, bytes: -1, staging: null, refill: source });
      return;
    }
    if (source.byteLength === 0) return;
    const staging = stagingWith(this.device, source);
    rec.ownBuffers.push(staging);
    rec.commands.push({ kind: 'write', target, offset, bytes: source.byteLength, staging, refill: null });
  }

  host(effect: () => void): void {
    this.recording.commands.push({ kind: 'host', run: effect });
  }

  read(): Promise<ArrayBuffer> {
    throw new Error('a recorded step cannot read back: read after endRecording()');
  }
}

/**
 * Ends a recording: takes the uniform arena chunks its dispatches wrote (`arena`), refuses a
 * transient buffer the recorded code did not release (a tensor kept past the step: the next
 * replay would overwrite it), assigns memory by liveness and makes the bind groups. On the
 * refusal, `release` gives back what the recording holds before the error is thrown.
 */
export function finishRecording(
  rec: Recording,
  arena: GPUBuffer[],
  pool: BufferPool,
  device: GPUDevice,
  release: (rec: Recording) => void,
): Recording {
  rec.ownBuffers.push(...arena);
  const kept = rec.virtual.filter((v) => !v.released);
  if (kept.length > 0) {
    release(rec);
    throw new Error(
      `a recorded step kept ${kept.length} transient tensor(s) past its end (${kept.slice(0, 3).map((v) => v.label).join(', ')}); ` +
        'make long-lived tensors before recording or with Context.persistent',
    );
  }
  assignBuffers(rec, pool);
  for (const c of rec.commands) {
    if (c.kind === 'dispatch') c.bindGroup = device.createBindGroup({ layout: c.layout, entries: c.entries.map(bindEntry) });
  }
  rec.ended = true;
  return rec;
}

/** Encodes commands [from, to) of a finished recording through `sink`, refilling its step-dependent writes. */
export function encodeRecorded(rec: Recording, from: number, to: number, sink: EagerSink): void {
  for (let i = from; i < to; i++) {
    const c = rec.commands[i]!;
    if (c.kind === 'dispatch') {
      sink.dispatchBound(c.pipeline, c.bindGroup!, c.x, c.y, c.z);
    } else if (c.kind === 'copy') {
      sink.copy(c.src, c.dst, c.bytes, c.srcOffset, c.dstOffset);
    } else if (c.kind === 'clear') {
      sink.clear(c.buffer, c.offset, c.bytes);
    } else if (c.kind === 'host') {
      c.run();
    } else if (c.refill) {
      const data = c.refill();
      if (c.bytes < 0) c.bytes = data.byteLength;
      if (data.byteLength !== c.bytes) {
        throw new Error(`replay: a step-dependent write changed size (${c.bytes} -> ${data.byteLength} bytes); record the step again`);
      }
      sink.write(c.target, data, c.offset);
    } else {
      sink.copy(c.staging!, c.target, c.staging!.size, 0, c.offset);
    }
  }
}
