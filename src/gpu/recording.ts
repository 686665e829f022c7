/**
 * A recorded command sequence that can be encoded again without running the code that made it.
 *
 * WebGPU command buffers are single-use and compute passes have no bundles, so "replaying" a
 * training step means re-encoding its dispatches and copies from a list: the pipelines, bind
 * groups, uniform data and workgroup counts were all built once, while recording. What a step
 * must change between replays is host data: each write recorded with a `refill` callback
 * (a new image batch, a new mask's site tables, drop-path draws, the scheduled lr) is refilled
 * when the replay reaches it, in recording order, so callbacks that draw random numbers draw
 * them in the same order as recording the step again would. Writes without one are constants;
 * their staging buffers are kept and copied again. Host-side bookkeeping the recorded code did
 * (BatchNorm's num_batches_tracked) is registered with `Gpu.onReplay` and done again too.
 *
 * Buffers: every pooled buffer the recording acquired is owned by it while it lives (taken
 * out of the pool's free lists when recording ends), so nothing outside the step can be
 * handed a buffer the step will overwrite on its next replay. Uniform arena chunks likewise.
 */

export type RecordedCommand =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; x: number; y: number; z: number }
  | { kind: 'copy'; src: GPUBuffer; dst: GPUBuffer; bytes: number; srcOffset: number; dstOffset: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; bytes: number }
  /** A host write: from a kept staging buffer (constant) or refilled on every replay. */
  | { kind: 'write'; target: GPUBuffer; offset: number; bytes: number; staging: GPUBuffer | null; refill: (() => ArrayBufferView) | null }
  /** Host bookkeeping the recorded code did (a counter), done again on every replay. */
  | { kind: 'host'; run: () => void };

export class Recording {
  readonly commands: RecordedCommand[] = [];
  /** Pooled buffers acquired while recording (owned by the recording once it ends). */
  readonly acquired = new Set<GPUBuffer>();
  /** Uniform arena chunks and constant staging buffers the commands read. */
  readonly ownBuffers: GPUBuffer[] = [];
  /** Set when recording ends: the acquired buffers taken out of the pool. */
  claimed: GPUBuffer[] = [];
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

  /** Bytes of the pooled buffers this recording owns (its working set between replays). */
  get claimedBytes(): number {
    let n = 0;
    for (const b of this.claimed) n += b.size;
    return n;
  }
}
