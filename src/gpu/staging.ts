/**
 * Host data in and out of GPU buffers: a mapped staging buffer holding data to copy in, and a
 * read back through a mappable copy. Neither writes a buffer early: the copy into a target is
 * a command of the stream, ordered with the rest (gpu.ts's ordering rule).
 */
import type { CommandStream, GpuStats } from './command-stream.ts';
import { BufferUsage, MapMode } from './constants.ts';
import type { DeviceHealth } from './health.ts';

/** A copy source holding `data`, its size rounded up to 4 bytes (copies move whole words). */
export function stagingWith(device: GPUDevice, data: ArrayBufferView): GPUBuffer {
  const bytes = data.byteLength;
  const staging = device.createBuffer({
    size: Math.ceil(bytes / 4) * 4,
    usage: BufferUsage.COPY_SRC | BufferUsage.MAP_WRITE,
    mappedAtCreation: true,
  });
  new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
  staging.unmap();
  return staging;
}

/**
 * Reads `bytes` bytes of `buffer` at `offset`: the copy is encoded now, then everything is
 * submitted; the promise settles when the GPU is done, with any device error thrown.
 */
export async function readBack(
  device: GPUDevice,
  stream: CommandStream,
  health: DeviceHealth,
  stats: GpuStats,
  source: { buffer: GPUBuffer; bytes: number; offset: number },
): Promise<ArrayBuffer> {
  const { buffer, bytes, offset } = source;
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = device.createBuffer({ size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  stream.copyEncoder().copyBufferToBuffer(buffer, offset, staging, 0, size);
  stats.readbacks++;
  stream.flush();
  try {
    await staging.mapAsync(MapMode.READ);
  } catch (err) {
    staging.destroy();
    await health.throwIfFailed();
    throw err;
  }
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  await health.throwIfFailed();
  return out;
}
