/**
 * Storage buffers recycled by size class. Classes are 4 per octave (x1, x1.19, x1.41, x1.68),
 * so a request wastes at most ~19 % and tensors whose sizes drift a little (a different number
 * of active sites) still find a free buffer: exact-size pools miss on every dynamic shape.
 */

import { BufferUsage } from './constants.ts';

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

const MIN_BYTES = 256;

/** The size of the class a request of `bytes` falls into. */
export function sizeClass(bytes: number): number {
  const want = Math.max(MIN_BYTES, bytes);
  const octave = 2 ** Math.floor(Math.log2(want));
  for (const step of [1, 1.25, 1.5, 1.75, 2]) {
    const size = Math.ceil((octave * step) / 256) * 256;
    if (size >= want) return size;
  }
  return octave * 2;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  /** Bytes held by buffers that are handed out, and the peak of that since the last reset. */
  liveBytes = 0;
  peakBytes = 0;
  /** Bytes of every buffer this pool created and has not destroyed. */
  allocatedBytes = 0;

  constructor(private device: GPUDevice) {}

  acquire(bytes: number, usage: number = STORAGE_USAGE, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage, label: label ?? `pool-${size}` });
      this.allocatedBytes += size;
    }
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  /**
   * Returns a buffer for reuse. Safe while earlier recorded commands still read it: WebGPU
   * runs one queue in order, and the engine records every later write to a reused buffer
   * into the same command stream (never as an early `queue.writeBuffer`).
   */
  release(buffer: GPUBuffer): void {
    const key = `${buffer.usage}:${buffer.size}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buffer);
    this.liveBytes -= buffer.size;
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Destroys every free buffer (after an out-of-memory error, or when shutting down). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.allocatedBytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }
}
