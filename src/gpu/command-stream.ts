/**
 * The one command stream: a command encoder and its open compute pass, into which every
 * dispatch and copy goes until something needs the results; the uniform arena the dispatches'
 * params live in; staging buffers to destroy once submitted. `flush` is the one queue submit.
 *
 * Uniform data is the one thing written early (`queue.writeBuffer` at submit, before the
 * commands that read it): arena chunks hold only uniforms, each chunk used by one submission
 * (or owned by one recording) at a time.
 */
import { BufferUsage } from './constants.ts';
import type { DeviceHealth } from './health.ts';

/** Counts for benchmarks and tests (submits per step, for instance). */
export interface GpuStats {
  submits: number;
  dispatches: number;
  workgroups: number;
  pipelines: number;
  readbacks: number;
}

const UNIFORM_ALIGN = 256;
const ARENA_CHUNK = 64 * 1024;

interface ArenaChunk {
  buffer: GPUBuffer;
  data: Uint8Array<ArrayBuffer>;
  used: number;
}

export class CommandStream {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arenaChunks: ArenaChunk[] = [];
  private freeArenaChunks: GPUBuffer[] = [];
  private stagingToDestroy: GPUBuffer[] = [];

  constructor(
    private device: GPUDevice,
    private health: DeviceHealth,
    private stats: GpuStats,
  ) {}

  /** The encoder, with no compute pass open: for copies, clears and query resolves. */
  copyEncoder(): GPUCommandEncoder {
    this.endPass();
    return this.commandEncoder();
  }

  /** The open compute pass, begun if none is. */
  computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  /** Ends the open pass and begins one with `descriptor` (a timestamp at its beginning, say). */
  beginPass(descriptor: GPUComputePassDescriptor): void {
    this.endPass();
    this.pass = this.commandEncoder().beginComputePass(descriptor);
  }

  endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** A slot of the uniform arena holding `params`, written to the GPU at the next submit. */
  uniform(params: Uint8Array): GPUBufferBinding {
    const bytes = params.byteLength;
    let chunk = this.arenaChunks[this.arenaChunks.length - 1];
    if (!chunk || chunk.used + bytes > ARENA_CHUNK) {
      const buffer =
        this.freeArenaChunks.pop() ??
        this.device.createBuffer({
          size: ARENA_CHUNK,
          usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
          label: 'uniform-arena',
        });
      chunk = { buffer, data: new Uint8Array(ARENA_CHUNK), used: 0 };
      this.arenaChunks.push(chunk);
    }
    const offset = chunk.used;
    chunk.data.set(params, offset);
    chunk.used = Math.ceil((offset + bytes) / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    return { buffer: chunk.buffer, offset, size: bytes };
  }

  /**
   * Writes the arena's data to the GPU now and hands its chunks over (to a recording, which
   * reads them on every replay and gives them back with `recycleArenaChunk`).
   */
  takeArena(): GPUBuffer[] {
    for (const chunk of this.arenaChunks) this.device.queue.writeBuffer(chunk.buffer, 0, chunk.data, 0, chunk.used);
    const buffers = this.arenaChunks.map((c) => c.buffer);
    this.arenaChunks = [];
    return buffers;
  }

  /** An arena chunk no command will read again after those already submitted. */
  recycleArenaChunk(buffer: GPUBuffer): void {
    this.freeArenaChunks.push(buffer);
  }

  /** Destroys `buffer` after the next submit (the commands encoded so far may read it). */
  destroyAfterSubmit(buffer: GPUBuffer): void {
    this.stagingToDestroy.push(buffer);
  }

  /** Submits everything encoded so far (one queue submit). */
  flush(): void {
    if (this.health.destroyed) return;
    if (!this.encoder) return;
    this.endPass();
    for (const chunk of this.arenaChunks) {
      this.device.queue.writeBuffer(chunk.buffer, 0, chunk.data, 0, chunk.used);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.stats.submits++;
    this.encoder = null;
    // Arena chunks and staging buffers may be reused or destroyed now: later writes to them
    // are ordered after this submit on the queue. (A recording's chunks never get here:
    // takeArena hands them to it.)
    for (const chunk of this.arenaChunks) this.freeArenaChunks.push(chunk.buffer);
    this.arenaChunks = [];
    for (const b of this.stagingToDestroy) b.destroy();
    this.stagingToDestroy = [];
    this.health.nextScopes();
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }
}
