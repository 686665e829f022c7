/**
 * The GPU runtime: one device, its limits, a buffer pool, a pipeline cache, and one command
 * stream that batches every dispatch and copy until something needs the results.
 * It knows nothing about tensors or neural networks.
 *
 * Ordering rule: every write to a buffer is recorded into the command stream (dispatches,
 * copies from staging buffers), never issued early through `queue.writeBuffer`, so a buffer
 * the pool hands out again is only overwritten after the commands that read it before.
 * The one exception is uniform data, which lives in arena chunks no other command uses.
 */
import { BufferPool, sizeClass, STORAGE_USAGE } from './buffer-pool.ts';
import { GpuDeviceLostError, GpuOutOfMemoryError, GpuValidationError } from './errors.ts';
import { BufferUsage, MapMode, ShaderStage } from './constants.ts';
import { parseBindings, type BindingDecl } from './wgsl-bindings.ts';
import { packUniforms, parseUniformLayout, type UniformLayout, type UniformValues } from './wgsl-uniforms.ts';
import { referencedBy } from './wgsl-source.ts';
import { assignBuffers, Recording, VirtualBuffer, type AnyBuffer, type RecordedEntry } from './recording.ts';
import { ReplayChunking } from './replay-chunks.ts';

export type { UniformValues } from './wgsl-uniforms.ts';

/** Reads the text of `shaders/<name>.wgsl`. Node reads the file; the browser bundles it. */
export type ShaderLoader = (name: string) => string;

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (SwiftShader, WARP): correct but slow. */
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

export type Workgroups = readonly [number, number?, number?];
export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly bindings: ReadonlyMap<string, BindingDecl>;
  /** The storage bindings the entry point's code names (its body and the functions it calls). */
  readonly referenced: ReadonlySet<string>;
  /** The file's uniform struct, packed from each launch's named values; null if it has none. */
  readonly uniform: UniformLayout | null;
  readonly layout: GPUBindGroupLayout;
  readonly label: string;
}

const UNIFORM_ALIGN = 256;
const ARENA_CHUNK = 64 * 1024;

/** Limits we ask for at the adapter's own values rather than WebGPU's defaults. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

export interface GpuOptions {
  powerPreference?: GPUPowerPreference;
}

export class Gpu {
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  /** Counts for benchmarks and tests (submits per step, for instance). */
  readonly stats = { submits: 0, dispatches: 0, workgroups: 0, pipelines: 0, readbacks: 0 };
  /** Where a replayed step's submissions begin and end, so each stays under a GPU-time budget (replay-chunks.ts). */
  readonly replayChunks: ReplayChunking;

  private pipelines = new Map<string, Pipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arenaChunks: { buffer: GPUBuffer; data: Uint8Array<ArrayBuffer>; used: number }[] = [];
  private freeArenaChunks: GPUBuffer[] = [];
  private stagingToDestroy: GPUBuffer[] = [];
  private pendingScopes: Promise<GPUError | null>[] = [];
  private uncaptured: GPUError | null = null;
  private lostInfo: GPUDeviceLostInfo | null = null;
  private dummies = new Map<number, GPUBuffer>();
  private destroyed = false;
  /** The step being recorded for replay, if any (see recording.ts). */
  private recording: Recording | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    private loadShader: ShaderLoader,
  ) {
    this.pool = new BufferPool(device);
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.replayChunks = new ReplayChunking(this, adapter.isFallbackAdapter);
    device.lost.then((info) => {
      this.lostInfo = info;
    });
    device.addEventListener('uncapturederror', (ev) => {
      this.uncaptured ??= (ev as GPUUncapturedErrorEvent).error;
    });
    this.openScopes();
  }

  /** Asks `gpu` for an adapter (a hardware one first) and a device with the adapter's limits. */
  static async create(gpu: GPU, loadShader: ShaderLoader, options: GpuOptions = {}): Promise<Gpu> {
    const adapter =
      (await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' })) ??
      (await gpu.requestAdapter());
    if (!adapter) {
      throw new Error(
        'No WebGPU adapter is available. In a browser, use a recent Chrome or Edge (or enable WebGPU); ' +
          'in Node on a machine without a GPU, install Debian\'s chromium package for its SwiftShader driver.',
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) {
      const value = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    return new Gpu(device, describeAdapter(adapter, device), loadShader);
  }

  // ---- buffers -------------------------------------------------------------------------

  /**
   * A pooled storage buffer of at least `bytes` bytes; its contents are undefined. While a
   * step is being recorded, a transient one (not `lasting`) is a VirtualBuffer: the recording
   * assigns memory by liveness when it ends (recording.ts). Parameters, gradients and other
   * state that outlives the step pass `lasting`.
   */
  buffer(bytes: number, label?: string, lasting = false): GPUBuffer {
    this.checkAlive();
    const max = this.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new GpuOutOfMemoryError(
        `a tensor of ${(bytes / 2 ** 20).toFixed(1)} MiB exceeds this adapter's largest storage binding ` +
          `(${(max / 2 ** 20).toFixed(0)} MiB)`,
      );
    }
    if (this.recording && !lasting) {
      const v = new VirtualBuffer(sizeClass(bytes), STORAGE_USAGE, label ?? 'transient');
      this.recording.virtual.push(v);
      return v as unknown as GPUBuffer;
    }
    return this.pool.acquire(bytes, STORAGE_USAGE, label);
  }

  release(buffer: GPUBuffer): void {
    if (this.destroyed) return;
    const b = buffer as AnyBuffer;
    if (b instanceof VirtualBuffer) {
      b.released = true;
      return;
    }
    this.pool.release(buffer);
  }

  /**
   * Records a copy of `data` into `target` (at `offset` bytes), ordered with other commands.
   * Data that changes from step to step (a mask's tables, random draws, the scheduled lr) is
   * given as a function: it is called once now, or, while a step is being recorded, once on
   * every replay (same size each time). Data given as a view is a constant of a recording.
   */
  write(target: GPUBuffer, source: ArrayBufferView | (() => ArrayBufferView), offset = 0): void {
    this.checkAlive();
    const rec = this.recording;
    if (rec && typeof source === 'function') {
      rec.commands.push({ kind: 'write', target, offset, bytes: -1, staging: null, refill: source });
      return;
    }
    const data = typeof source === 'function' ? source() : source;
    const bytes = data.byteLength;
    if (bytes === 0) return;
    const padded = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({
      size: padded,
      usage: BufferUsage.COPY_SRC | BufferUsage.MAP_WRITE,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, bytes));
    staging.unmap();
    if (rec) {
      // A constant of the recording: its staging buffer is kept and copied on every replay.
      rec.ownBuffers.push(staging);
      rec.commands.push({ kind: 'write', target, offset, bytes, staging, refill: null });
      return;
    }
    this.stagingToDestroy.push(staging);
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(staging, 0, target, offset, padded);
  }

  /** A new pooled buffer holding `data`. */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    const buffer = this.buffer(Math.max(4, data.byteLength), label);
    this.write(buffer, data);
    return buffer;
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.checkAlive();
    if (bytes === 0) return;
    if (this.recording) {
      this.recording.commands.push({ kind: 'copy', src, dst, bytes, srcOffset, dstOffset });
      return;
    }
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Records a fill with zeros. */
  zero(buffer: GPUBuffer, bytes: number = buffer.size, offset = 0): void {
    this.checkAlive();
    if (bytes === 0) return;
    const size = Math.ceil(bytes / 4) * 4;
    if (this.recording) {
      this.recording.commands.push({ kind: 'clear', buffer, offset, bytes: size });
      return;
    }
    this.endPass();
    this.commandEncoder().clearBuffer(buffer, offset, size);
  }

  /**
   * Reads `bytes` bytes of `buffer` back to the CPU. The copy is recorded now (so the buffer
   * may be released right after this call); the promise settles when the GPU is done.
   */
  async read(buffer: GPUBuffer, bytes: number = buffer.size, offset = 0): Promise<ArrayBuffer> {
    this.checkAlive();
    if (this.recording) throw new Error('a recorded step cannot read back: read after endRecording()');
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({
      size,
      usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
    });
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.stats.readbacks++;
    this.flush();
    try {
      await staging.mapAsync(MapMode.READ);
    } catch (err) {
      staging.destroy();
      await this.throwIfFailed();
      throw err;
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.throwIfFailed();
    return out;
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
  pipeline(shader: string, entry: string, constants: Record<string, number | boolean> = {}): Pipeline {
    this.checkAlive();
    const keys = Object.keys(constants).sort();
    const key = `${shader}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    const cached = this.pipelines.get(key);
    if (cached) return cached;
    const code = this.loadShader(shader);
    const bindings = parseBindings(code);
    const uniform = parseUniformLayout(code);
    const referenced = referencedBy(code, entry, bindings.keys());
    const layout = this.device.createBindGroupLayout({
      label: shader,
      entries: [...bindings.values()].map((b) => ({
        binding: b.binding,
        visibility: ShaderStage.COMPUTE,
        buffer: { type: b.type },
      })),
    });
    const module = this.device.createShaderModule({ code, label: shader });
    const numeric: Record<string, number> = {};
    for (const k of keys) numeric[k] = Number(constants[k]);
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants: numeric },
    });
    const made: Pipeline = { pipeline, bindings, referenced, uniform, layout, label: key };
    this.pipelines.set(key, made);
    this.stats.pipelines++;
    return made;
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
  dispatch(
    p: Pipeline,
    buffers: Readonly<Record<string, BufferBinding | null | undefined>>,
    params: UniformValues | null,
    workgroups: Workgroups,
  ): void {
    this.checkAlive();
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new Error(`${p.label}: dispatch ${x}x${y}x${z} exceeds ${maxDim} workgroups per dimension`);
    }
    const entries: RecordedEntry[] = [];
    for (const [name, decl] of p.bindings) {
      if (decl.type === 'uniform') {
        if (!params || !p.uniform) throw new Error(`${p.label}: the shader declares uniform '${name}' but no params were given`);
        entries.push({ binding: decl.binding, ...this.uniform(packUniforms(p.uniform, params, p.label)) });
        continue;
      }
      const given = buffers[name];
      if (given === undefined && p.referenced.has(name)) {
        throw new Error(
          `${p.label}: the entry point uses binding '${name}' but no buffer was given ` +
            '(pass null where this launch does not read it: code an override constant or a flag switches off)',
        );
      }
      if (given === undefined || given === null) {
        entries.push({ binding: decl.binding, buffer: this.dummy(decl.binding) });
      } else if (isBinding(given)) {
        entries.push({ binding: decl.binding, ...given });
      } else {
        entries.push({ binding: decl.binding, buffer: given });
      }
    }
    for (const name of Object.keys(buffers)) {
      if (!p.bindings.has(name)) throw new Error(`${p.label}: no binding named '${name}' in the shader`);
    }
    if (params && !p.uniform) throw new Error(`${p.label}: params were given but the shader declares no var<uniform>`);
    if (this.recording) {
      this.recording.commands.push({ kind: 'dispatch', pipeline: p.pipeline, layout: p.layout, entries, bindGroup: null, x, y, z });
      return;
    }
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries: entries.map(bindEntry) });
    const pass = this.computePass();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
    this.stats.workgroups += x * y * z;
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

  // ---- recorded steps --------------------------------------------------------------------

  /**
   * Starts recording every command (dispatches, copies, clears, host writes) for replay.
   * Nothing recorded runs, and nothing recorded may read back; transient buffers are virtual
   * until `endRecording` assigns them. Everything encoded before is submitted first, so the
   * recording's uniform chunks hold only its own data.
   */
  beginRecording(): void {
    this.checkAlive();
    if (this.recording) throw new Error('already recording');
    this.flush();
    this.recording = new Recording();
  }

  /**
   * Ends the recording: gives its transient buffers memory by liveness and makes its bind
   * groups. Nothing has run yet: `replay` runs it. A transient buffer the recorded code did
   * not release (a tensor kept past the step) is an error: it would be overwritten by the
   * next replay.
   */
  endRecording(): Recording {
    const rec = this.recording;
    if (!rec) throw new Error('not recording');
    // The arena holds only the recording's uniforms (beginRecording flushed): write them and
    // hand the chunks to the recording. (Recording encodes nothing, so flush() would not.)
    for (const chunk of this.arenaChunks) {
      this.device.queue.writeBuffer(chunk.buffer, 0, chunk.data, 0, chunk.used);
      rec.ownBuffers.push(chunk.buffer);
    }
    this.arenaChunks = [];
    this.recording = null;
    const kept = rec.virtual.filter((v) => !v.released);
    if (kept.length > 0) {
      this.releaseRecording(rec);
      throw new Error(
        `a recorded step kept ${kept.length} transient tensor(s) past its end (${kept.slice(0, 3).map((v) => v.label).join(', ')}); ` +
          'make long-lived tensors before recording or with Context.persistent',
      );
    }
    assignBuffers(rec, this.pool);
    for (const c of rec.commands) {
      if (c.kind === 'dispatch') c.bindGroup = this.device.createBindGroup({ layout: c.layout, entries: c.entries.map(bindEntry) });
    }
    rec.ended = true;
    return rec;
  }

  /**
   * Host-side bookkeeping that goes with the GPU work (a counter): runs now, or, while a step
   * is being recorded, at this point of every replay.
   */
  hostEffect(effect: () => void): void {
    if (this.recording) this.recording.commands.push({ kind: 'host', run: effect });
    else effect();
  }

  /**
   * Encodes a recorded sequence again, refilling its step-dependent writes. On a slow GPU the
   * sequence goes out in several submissions, each under `replayChunks.budgetMs` of GPU time
   * (replay-chunks.ts); the commands and their order are the same either way.
   */
  replay(rec: Recording): void {
    this.checkAlive();
    if (!rec.ended || rec.disposed) throw new Error('replay: the recording is not finished or was released');
    if (this.recording) throw new Error('replay: cannot replay while recording');
    this.replayChunks.replay(rec);
  }

  /** Encodes commands [from, to) of a finished recording (`replay` and replay-chunks.ts decide the range). */
  encodeReplay(rec: Recording, from: number, to: number): void {
    // After endRecording every buffer in the commands is a real one.
    const real = (b: AnyBuffer) => b as GPUBuffer;
    for (let i = from; i < to; i++) {
      const c = rec.commands[i]!;
      if (c.kind === 'dispatch') {
        const pass = this.computePass();
        pass.setPipeline(c.pipeline);
        pass.setBindGroup(0, c.bindGroup!);
        pass.dispatchWorkgroups(c.x, c.y, c.z);
        this.stats.dispatches++;
        this.stats.workgroups += c.x * c.y * c.z;
      } else if (c.kind === 'copy') {
        this.copy(real(c.src), real(c.dst), c.bytes, c.srcOffset, c.dstOffset);
      } else if (c.kind === 'clear') {
        this.zero(real(c.buffer), c.bytes, c.offset);
      } else if (c.kind === 'host') {
        c.run();
      } else if (c.refill) {
        const data = c.refill();
        if (c.bytes < 0) c.bytes = data.byteLength;
        if (data.byteLength !== c.bytes) {
          throw new Error(`replay: a step-dependent write changed size (${c.bytes} -> ${data.byteLength} bytes); record the step again`);
        }
        this.write(real(c.target), data, c.offset);
      } else {
        this.copy(c.staging!, real(c.target), c.staging!.size, 0, c.offset);
      }
    }
  }

  /**
   * Ends the current pass and encodes an empty one whose end-of-pass timestamp goes to
   * `querySet[index]` once every earlier command has finished (replay-chunks.ts times a
   * replay's segments with it, inside their own submissions).
   */
  writeTimestamp(querySet: GPUQuerySet, index: number): void {
    this.endPass();
    this.commandEncoder().beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: index } }).end();
  }

  /** Gives a recording's buffers back (its commands may still be in flight: the queue orders them). */
  releaseRecording(rec: Recording): void {
    if (rec.disposed) return;
    rec.disposed = true;
    if (this.destroyed) return;
    for (const b of rec.assigned) this.pool.release(b);
    for (const b of rec.ownBuffers) {
      if (b.usage & BufferUsage.UNIFORM) this.freeArenaChunks.push(b);
      else this.stagingToDestroy.push(b);
    }
    rec.assigned = [];
  }

  // ---- submission ----------------------------------------------------------------------

  /**
   * GPU time in ms of the commands `record` records, from 'timestamp-query' (a timestamp at
   * the beginning of a first compute pass and at the end of an empty last one; Vulkan writes
   * the latter once every earlier command has finished), or null where the device lacks the
   * feature. Submits and waits; for benchmarks (bench/harness.ts), not for training steps.
   */
  async timeOnGpu(record: () => void): Promise<number | null> {
    this.checkAlive();
    if (!this.features.has('timestamp-query')) return null;
    this.flush();
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 });
    const resolved = this.device.createBuffer({ size: 16, usage: 0x200 /* QUERY_RESOLVE */ | BufferUsage.COPY_SRC });
    const read = this.device.createBuffer({ size: 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    try {
      this.pass = this.commandEncoder().beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } });
      record();
      this.writeTimestamp(querySet, 1);
      const enc = this.commandEncoder();
      enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, read, 0, 16);
      this.flush();
      await read.mapAsync(MapMode.READ);
      const [t0, t1] = new BigUint64Array(read.getMappedRange());
      read.unmap();
      await this.throwIfFailed();
      return Number(t1! - t0!) / 1e6;
    } finally {
      read.destroy();
      resolved.destroy();
      querySet.destroy();
    }
  }

  /** Submits everything recorded so far (one queue submit). */
  flush(): void {
    if (this.destroyed) return;
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
    // endRecording hands them to it.)
    for (const chunk of this.arenaChunks) this.freeArenaChunks.push(chunk.buffer);
    this.arenaChunks = [];
    for (const b of this.stagingToDestroy) b.destroy();
    this.stagingToDestroy = [];
    this.closeScopes();
    this.openScopes();
  }

  /** Submits and waits until the GPU has finished everything, then reports any error. */
  async sync(): Promise<void> {
    this.checkAlive();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.throwIfFailed();
  }

  /** Throws the first error the device reported since the last check, if any. */
  async throwIfFailed(): Promise<void> {
    if (this.lostInfo) throw new GpuDeviceLostError(this.lostInfo.reason, this.lostInfo.message);
    const scopes = this.pendingScopes;
    this.pendingScopes = [];
    const errors = await Promise.all(scopes);
    const error = errors.find((e) => e) ?? this.uncaptured;
    this.uncaptured = null;
    this.checkAlive();
    if (!error) return;
    if (error.constructor.name === 'GPUOutOfMemoryError') throw new GpuOutOfMemoryError(error.message);
    throw new GpuValidationError(error.message);
  }

  get isLost(): boolean {
    return this.lostInfo !== null;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.trim();
    this.device.destroy();
  }

  // ---- internals -----------------------------------------------------------------------

  private checkAlive(): void {
    if (this.lostInfo) throw new GpuDeviceLostError(this.lostInfo.reason, this.lostInfo.message);
    if (this.destroyed) throw new GpuDeviceLostError('destroyed', 'this Gpu was destroyed');
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private uniform(params: ArrayBufferView): GPUBufferBinding {
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
    chunk.data.set(new Uint8Array(params.buffer, params.byteOffset, bytes), offset);
    chunk.used = Math.ceil((offset + bytes) / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    return { buffer: chunk.buffer, offset, size: bytes };
  }

  /** A placeholder for a storage binding an entry point does not use (one per slot). */
  private dummy(binding: number): GPUBuffer {
    let b = this.dummies.get(binding);
    if (!b) {
      b = this.device.createBuffer({ size: 256, usage: BufferUsage.STORAGE, label: `unused-${binding}` });
      this.dummies.set(binding, b);
    }
    return b;
  }

  private openScopes(): void {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
  }

  private closeScopes(): void {
    this.pendingScopes.push(this.device.popErrorScope(), this.device.popErrorScope());
  }
}

function describeAdapter(adapter: GPUAdapter, device: GPUDevice): AdapterReport {
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const limits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    limits[name] = (device.limits as unknown as Record<string, number>)[name] ?? 0;
  }
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  const flagged =
    (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    // Dawn in Node does not always set the flag; SwiftShader and llvmpipe are software all the same.
    isFallbackAdapter: flagged === true || /swiftshader|llvmpipe|lavapipe|warp|software/i.test(text),
    features: [...(device.features as unknown as Iterable<string>)].sort(),
    limits,
  };
}

/** A `{buffer, offset, size}` binding rather than a whole buffer (GPUBuffer has no `buffer`). */
function isBinding(b: BufferBinding): b is { buffer: GPUBuffer; offset?: number; size?: number } {
  return 'buffer' in b;
}

function bindEntry(e: RecordedEntry): GPUBindGroupEntry {
  const resource: GPUBufferBinding = { buffer: e.buffer as GPUBuffer };
  if (e.offset !== undefined) resource.offset = e.offset;
  if (e.size !== undefined) resource.size = e.size;
  return { binding: e.binding, resource };
}
