/**
 * The GPU runtime: one device, its limits, a buffer pool, a pipeline cache, and one command
 * stream that batches every dispatch and copy until something needs the results.
 * It knows nothing about tensors or neural networks. `Gpu` is the façade the rest of the code
 * uses; each job lives in its own file:
 *
 *   device.ts          adapter, device, limits, the adapter report
 *   health.ts          device loss and error scopes
 *   pipelines.ts       the pipeline cache, and what a launch binds (by WGSL name)
 *   wgsl-*.ts          bindings, uniform structs and entry-point references read from WGSL
 *   command-stream.ts  the encoder and its pass, the uniform arena, the queue submit
 *   command-sink.ts    where commands go: encoded now (EagerSink) ...
 *   recorder.ts        ... or kept for replay (Recorder); recording.ts, replay-chunks.ts
 *   replay-profile.ts  a replay timed dispatch by dispatch (bench train --profile)
 *   staging.ts         host data in (staging buffers) and out (read back)
 *   timing.ts          GPU timestamps
 *
 * Ordering rule: every write to a buffer is recorded into the command stream (dispatches,
 * copies from staging buffers), never issued early through `queue.writeBuffer`, so a buffer
 * the pool hands out again is only overwritten after the commands that read it before.
 * The one exception is uniform data, which lives in arena chunks no other command uses.
 */
import { BufferPool, STORAGE_USAGE } from './buffer-pool.ts';
import { GpuOutOfMemoryError } from './errors.ts';
import { BufferUsage } from './constants.ts';
import { openDevice, type AdapterReport, type GpuOptions, type ShaderLoader } from './device.ts';
import { DeviceHealth } from './health.ts';
import { CommandStream, type GpuStats } from './command-stream.ts';
import { EagerSink, type CommandSink, type HostData } from './command-sink.ts';
import { encodeRecorded, finishRecording, Recorder } from './recorder.ts';
import { PipelineCache, type LaunchBuffers, type Pipeline, type StorageVariant } from './pipelines.ts';
import { VirtualBuffer, type DispatchNote, type Recording } from './recording.ts';
import { ReplayChunking } from './replay-chunks.ts';
import { profileReplay, type ReplayProfile } from './replay-profile.ts';
import { timeOnGpu, writeTimestamp } from './timing.ts';
import type { UniformValues } from './wgsl-uniforms.ts';

export type { AdapterReport, GpuOptions, ShaderLoader } from './device.ts';
export type { BufferBinding, LaunchBuffers, Pipeline, StorageVariant } from './pipelines.ts';
export type { UniformValues } from './wgsl-uniforms.ts';
export type { DispatchNote } from './recording.ts';
export type { ProfiledDispatch, ProfiledTransfer, ProfiledUnit, ReplayProfile } from './replay-profile.ts';

export type Workgroups = readonly [number, number?, number?];

export class Gpu {
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  /** Counts for benchmarks and tests (submits per step, for instance). */
  readonly stats: GpuStats = { submits: 0, dispatches: 0, workgroups: 0, pipelines: 0, readbacks: 0 };
  /** Where a replayed step's submissions begin and end, so each stays under a GPU-time budget (replay-chunks.ts). */
  readonly replayChunks: ReplayChunking;

  private health: DeviceHealth;
  private stream: CommandStream;
  private pipelines: PipelineCache;
  private eager: EagerSink;
  /** Where commands go: `eager`, or the recorder while a step is being recorded. */
  private sink: CommandSink;
  private recorder: Recorder | null = null;
  /** The op notes around the dispatches being made now (`noting`). */
  private notes: DispatchNote[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    loadShader: ShaderLoader,
  ) {
    this.pool = new BufferPool(device);
    this.limits = device.limits;
    this.features = new Set(device.features);
    this.health = new DeviceHealth(device);
    this.stream = new CommandStream(device, this.health, this.stats);
    this.pipelines = new PipelineCache(device, loadShader, this.stats);
    this.eager = new EagerSink(device, this.pool, this.stream, this.health, this.stats);
    this.sink = this.eager;
    this.replayChunks = new ReplayChunking(this, adapter.isFallbackAdapter);
  }

  /** Asks `gpu` for an adapter (a hardware one first) and a device with the adapter's limits. */
  static async create(gpu: GPU, loadShader: ShaderLoader, options: GpuOptions = {}): Promise<Gpu> {
    const { device, report } = await openDevice(gpu, options);
    return new Gpu(device, report, loadShader);
  }

  // ---- buffers -------------------------------------------------------------------------

  /**
   * A pooled storage buffer of at least `bytes` bytes; its contents are undefined. While a
   * step is being recorded, a transient one (not `lasting`) is a VirtualBuffer: the recording
   * assigns memory by liveness when it ends (recording.ts). Parameters, gradients and other
   * state that outlives the step pass `lasting`.
   */
  buffer(bytes: number, label?: string, lasting = false): GPUBuffer {
    this.health.checkAlive();
    const max = this.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new GpuOutOfMemoryError(
        `a tensor${label ? ` ('${label}')` : ''} of ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this adapter's largest storage binding ` +
          `(${(max / 2 ** 20).toFixed(0)} MiB)`,
      );
    }
    return lasting ? this.pool.acquire(bytes, STORAGE_USAGE, label) : this.sink.transientBuffer(bytes, label);
  }

  release(buffer: GPUBuffer): void {
    if (this.health.destroyed) return;
    if (buffer instanceof VirtualBuffer) buffer.released = true;
    else this.pool.release(buffer);
  }

  /**
   * Records a copy of `data` into `target` (at `offset` bytes), ordered with other commands.
   * Data that changes from step to step (a mask's tables, random draws, the scheduled lr) is
   * given as a function: it is called once now, or, while a step is being recorded, once on
   * every replay (same size each time). Data given as a view is a constant of a recording.
   */
  write(target: GPUBuffer, source: HostData, offset = 0): void {
    this.health.checkAlive();
    this.sink.write(target, source, offset);
  }

  /** A new pooled buffer holding `data`. */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    const buffer = this.buffer(Math.max(4, data.byteLength), label);
    this.write(buffer, data);
    return buffer;
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.health.checkAlive();
    if (bytes === 0) return;
    this.sink.copy(src, dst, bytes, srcOffset, dstOffset);
  }

  /** Records a fill with zeros. */
  zero(buffer: GPUBuffer, bytes: number = buffer.size, offset = 0): void {
    this.health.checkAlive();
    if (bytes === 0) return;
    this.sink.clear(buffer, offset, Math.ceil(bytes / 4) * 4);
  }

  /**
   * Reads `bytes` bytes of `buffer` back to the CPU. The copy is recorded now (so the buffer
   * may be released right after this call); the promise settles when the GPU is done.
   */
  async read(buffer: GPUBuffer, bytes: number = buffer.size, offset = 0): Promise<ArrayBuffer> {
    this.health.checkAlive();
    return this.sink.read(buffer, bytes, offset);
  }

  async readFloat32(buffer: GPUBuffer, count: number, offsetElements = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, count * 4, offsetElements * 4));
  }

  // ---- pipelines and dispatch -----------------------------------------------------------

  /**
   * The compute pipeline for `entry` in `shaders/<shader>.wgsl`, specialised by `override`
   * constants. Its bind group layout is explicit and lists every binding the file declares,
   * so all entry points of one file share a layout and bind by name.
   */
  pipeline(
    shader: string,
    entry: string,
    constants: Record<string, number | boolean> = {},
    variant: StorageVariant = {},
  ): Pipeline {
    this.health.checkAlive();
    return this.pipelines.get(shader, entry, constants, variant);
  }

  /**
   * Records one dispatch. `buffers` binds storage buffers by their WGSL names, and every
   * binding the entry point's code names (wgsl-source.ts) must be given: a buffer, or `null`
   * where this launch does not read it (the code that does is switched off by an `override`
   * constant or a uniform flag). A binding the entry point never names is left out. A null or
   * left-out binding gets a small placeholder: the entry points of one file share a layout
   * that lists all its bindings, and WebGPU needs each bound. `params` fills the file's
   * `var<uniform>` by field name (wgsl-uniforms.ts).
   */
  dispatch(p: Pipeline, buffers: LaunchBuffers, params: UniformValues | null, workgroups: Workgroups): void {
    this.health.checkAlive();
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new Error(`${p.label}: dispatch ${x}x${y}x${z} exceeds ${maxDim} workgroups per dimension`);
    }
    const entries = this.pipelines.entries(p, buffers, params, (bytes) => this.stream.uniform(bytes));
    // Only a recording keeps the notes (a profile of its replay reads them).
    this.sink.dispatch(p, entries, x, y, z, this.recorder && this.notes.length ? this.notes.slice() : undefined);
  }

  /**
   * Runs `fn` with `note` on every dispatch it records (innermost last): which op call a launch
   * belongs to, for a profile of a replayed step (replay-profile.ts). Costs nothing else.
   */
  noting<T>(note: DispatchNote, fn: () => T): T {
    this.notes.push(note);
    try {
      return fn();
    } finally {
      this.notes.pop();
    }
  }

  /**
   * Splits `groups` workgroups into a grid that fits the per-dimension limit. Shaders recover
   * the linear index as `wid.x + wid.y * nwg.x` and skip ids past the real count.
   */
  grid(groups: number): [number, number] {
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxDim) return [Math.max(groups, 0), 1];
    const y = Math.ceil(groups / maxDim);
    return [Math.ceil(groups / y), y];
  }

  /**
   * Host-side bookkeeping that goes with the GPU work (a counter): runs now, or, while a step
   * is being recorded, at this point of every replay.
   */
  hostEffect(effect: () => void): void {
    this.sink.host(effect);
  }

  // ---- recorded steps --------------------------------------------------------------------

  /**
   * Starts recording every command (dispatches, copies, clears, host writes) for replay.
   * Nothing recorded runs, and nothing recorded may read back; transient buffers are virtual
   * until `endRecording` assigns them. Everything encoded before is submitted first, so the
   * recording's uniform chunks hold only its own data.
   */
  beginRecording(): void {
    this.health.checkAlive();
    if (this.recorder) throw new Error('already recording');
    this.flush();
    this.recorder = new Recorder(this.device);
    this.sink = this.recorder;
  }

  /**
   * Ends the recording: gives its transient buffers memory by liveness and makes its bind
   * groups. Nothing has run yet: `replay` runs it. A transient buffer the recorded code did
   * not release (a tensor kept past the step) is an error: it would be overwritten by the
   * next replay.
   */
  endRecording(): Recording {
    const recorder = this.recorder;
    if (!recorder) throw new Error('not recording');
    this.recorder = null;
    this.sink = this.eager;
    // The arena holds only the recording's uniforms (beginRecording flushed; recording encodes nothing).
    const arena = this.stream.takeArena();
    return finishRecording(recorder.recording, arena, this.pool, this.device, (rec) => this.releaseRecording(rec));
  }

  /**
   * Encodes a recorded sequence again, refilling its step-dependent writes. On a slow GPU the
   * sequence goes out in several submissions, each under `replayChunks.budgetMs` of GPU time
   * (replay-chunks.ts); the commands and their order are the same either way.
   */
  replay(rec: Recording): void {
    this.health.checkAlive();
    if (!rec.ended || rec.disposed) throw new Error('replay: the recording is not finished or was released');
    if (this.recorder) throw new Error('replay: cannot replay while recording');
    this.replayChunks.replay(rec);
  }

  /** Encodes commands [from, to) of a finished recording (`replay` and replay-chunks.ts decide the range). */
  encodeReplay(rec: Recording, from: number, to: number): void {
    encodeRecorded(rec, from, to, this.eager);
  }

  /**
   * Replays `rec` once with a GPU timestamp pair around each dispatch and each run of copies
   * (replay-profile.ts: one pass per dispatch, which adds pass overhead), submits, and reads
   * the times back; null where the device lacks 'timestamp-query'. For benchmarks.
   */
  async profileReplay(rec: Recording): Promise<ReplayProfile | null> {
    this.health.checkAlive();
    if (!rec.ended || rec.disposed) throw new Error('profileReplay: the recording is not finished or was released');
    if (!this.features.has('timestamp-query')) return null;
    return profileReplay({ device: this.device, stream: this.stream, eager: this.eager, health: this.health }, rec);
  }

  /** Gives a recording's buffers back (its commands may still be in flight: the queue orders them). */
  releaseRecording(rec: Recording): void {
    if (rec.disposed) return;
    rec.disposed = true;
    if (this.health.destroyed) return;
    for (const b of rec.assigned) this.pool.release(b);
    for (const b of rec.ownBuffers) {
      if (b.usage & BufferUsage.UNIFORM) this.stream.recycleArenaChunk(b);
      else this.stream.destroyAfterSubmit(b);
    }
    rec.assigned = [];
  }

  // ---- timing and submission -------------------------------------------------------------

  /**
   * GPU time in ms of the commands `record` records (timing.ts), or null where the device
   * lacks 'timestamp-query'. Submits and waits; for benchmarks (bench/harness.ts), not for
   * training steps.
   */
  async timeOnGpu(record: () => void): Promise<number | null> {
    this.health.checkAlive();
    if (!this.features.has('timestamp-query')) return null;
    return timeOnGpu(this.device, this.stream, this.health, record);
  }

  /**
   * Ends the current pass and encodes an empty one whose end-of-pass timestamp goes to
   * `querySet[index]` once every earlier command has finished (replay-chunks.ts times a
   * replay's segments with it, inside their own submissions).
   */
  writeTimestamp(querySet: GPUQuerySet, index: number): void {
    writeTimestamp(this.stream, querySet, index);
  }

  /** Submits everything recorded so far (one queue submit). */
  flush(): void {
    this.stream.flush();
  }

  /** Submits and waits until the GPU has finished everything, then reports any error. */
  async sync(): Promise<void> {
    this.health.checkAlive();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.health.throwIfFailed();
  }

  /** Throws the first error the device reported since the last check, if any. */
  async throwIfFailed(): Promise<void> {
    await this.health.throwIfFailed();
  }

  get isLost(): boolean {
    return this.health.isLost;
  }

  destroy(): void {
    if (this.health.destroyed) return;
    this.health.destroyed = true;
    this.pool.trim();
    this.device.destroy();
  }
}
