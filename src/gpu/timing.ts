/**
 * GPU time from 'timestamp-query': `timeOnGpu` for benchmarks (bench/harness.ts), and the
 * end-of-pass timestamp it ends with, which replay-chunks.ts also writes between segments.
 */
import type { CommandStream } from './command-stream.ts';
import { BufferUsage, MapMode } from './constants.ts';
import type { DeviceHealth } from './health.ts';

/**
 * Ends the current pass and encodes an empty one whose end-of-pass timestamp goes to
 * `querySet[index]` once every earlier command has finished.
 */
export function writeTimestamp(stream: CommandStream, querySet: GPUQuerySet, index: number): void {
  stream.copyEncoder().beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: index } }).end();
}

/**
 * GPU time in ms of the commands `record` encodes: a timestamp at the beginning of a first
 * compute pass and at the end of an empty last one (Vulkan writes the latter once every
 * earlier command has finished). Submits and waits. The caller checks the feature.
 */
export async function timeOnGpu(device: GPUDevice, stream: CommandStream, health: DeviceHealth, record: () => void): Promise<number> {
  stream.flush();
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  try {
    stream.beginPass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } });
    record();
    writeTimestamp(stream, querySet, 1);
    const enc = stream.copyEncoder();
    enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, read, 0, 16);
    stream.flush();
    await read.mapAsync(MapMode.READ);
    const [t0, t1] = new BigUint64Array(read.getMappedRange());
    read.unmap();
    await health.throwIfFailed();
    return Number(t1! - t0!) / 1e6;
  } finally {
    read.destroy();
    resolved.destroy();
    querySet.destroy();
  }
}
