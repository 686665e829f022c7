/**
 * Where the Gpu's commands go: encoded now (`EagerSink`, into the command stream) or kept for
 * replay (`Recorder`, recorder.ts). `Gpu` holds one sink at a time and swaps it in
 * beginRecording / endRecording, so neither path asks whether a step is being recorded.
 */
import { STORAGE_USAGE, type BufferPool } from './buffer-pool.ts';
import type { CommandStream, GpuStats } from './command-stream.ts';
import type { DeviceHealth } from './health.ts';
import type { Pipeline } from './pipelines.ts';
import type { DispatchNote, RecordedEntry } from './recording.ts';
import { readBack, stagingWith } from './staging.ts';

/** Host data for a write: a view (a constant), or a function called when the write is encoded. */
export type HostData = ArrayBufferView | (() => ArrayBufferView);

export interface CommandSink {
  /** A storage buffer for a tensor that lives within the step (`Gpu.buffer` without `lasting`). */
  transientBuffer(bytes: number, label: string | undefined): GPUBuffer;
  /** `notes`: the op notes around the launch (`Gpu.noting`), kept by a recording for its profile. */
  dispatch(pipeline: Pipeline, entries: RecordedEntry[], x: number, y: number, z: number, notes?: readonly DispatchNote[]): void;
  /** `bytes` > 0. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset: number, dstOffset: number): void;
  /** `bytes` > 0, a multiple of 4. */
  clear(buffer: GPUBuffer, offset: number, bytes: number): void;
  write(target: GPUBuffer, source: HostData, offset: number): void;
  /** Host bookkeeping that goes with the commands (a counter). */
  host(effect: () => void): void;
  read(buffer: GPUBuffer, bytes: number, offset: number): Promise<ArrayBuffer>;
}

/** Encodes every command into the command stream at once. */
export class EagerSink implements CommandSink {
  constructor(
    private device: GPUDevice,
    private pool: BufferPool,
    private stream: CommandStream,
    private health: DeviceHealth,
    private stats: GpuStats,
  ) {}

  transientBuffer(bytes: number, label: string | undefined): GPUBuffer {
    return this.pool.acquire(bytes, STORAGE_USAGE, label);
  }

  dispatch(p: Pipeline, entries: RecordedEntry[], x: number, y: number, z: number): void {
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries: entries.map(bindEntry) });
    this.dispatchBound(p.pipeline, bindGroup, x, y, z);
  }

  /** A dispatch whose bind group is made already (a replayed one). */
  dispatchBound(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number): void {
    const pass = this.stream.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
    this.stats.workgroups += x * y * z;
  }

  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset: number, dstOffset: number): void {
    this.stream.copyEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  clear(buffer: GPUBuffer, offset: number, bytes: number): void {
    this.stream.copyEncoder().clearBuffer(buffer, offset, bytes);
  }

  write(target: GPUBuffer, source: HostData, offset: number): void {
    const data = typeof source === 'function' ? source() : source;
    if (data.byteLength === 0) return;
    const staging = stagingWith(this.device, data);
    this.stream.destroyAfterSubmit(staging);
    this.stream.copyEncoder().copyBufferToBuffer(staging, 0, target, offset, staging.size);
  }

  host(effect: () => void): void {
    effect();
  }

  read(buffer: GPUBuffer, bytes: number, offset: number): Promise<ArrayBuffer> {
    return readBack(this.device, this.stream, this.health, this.stats, { buffer, bytes, offset });
  }
}

/** A bind group entry from a recorded one. */
export function bindEntry(e: RecordedEntry): GPUBindGroupEntry {
  const resource: GPUBufferBinding = { buffer: e.buffer };
  if (e.offset !== undefined) resource.offset = e.offset;
  if (e.size !== undefined) resource.size = e.size;
  return { binding: e.binding, resource };
}
