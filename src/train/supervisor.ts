/**
 * Keeps a run going through faults the Trainer cannot handle alone. Platform-free: the CLI
 * (src/cli/pretrain.ts) and the browser worker (src/worker/run-lifecycle.ts) give it a `build`
 * that makes a Gpu + Context + Trainer, and `latest` that reads the newest checkpoint.
 *
 * - GPU device lost (driver reset, `device.destroy()`, the browser's GPU process crashed or was
 *   restarted, a laptop that slept): the GPU's copy of everything since the last checkpoint is
 *   gone. The supervisor disposes the dead Gpu/Context, builds new ones, restores the newest
 *   checkpoint and trains on, without a page reload or a new process. It does so at most
 *   `maxLossesPerHour` times in any hour; one more loss within the hour ends the run with a
 *   `DeviceUnstableError` saying what to do. When no new device can be had (the GPU process is
 *   still restarting, the adapter is gone), it says so (`status` 'waiting') and tries again
 *   with backoff until one is back or the run is stopped.
 * - Storage full (ENOSPC/EDQUOT on disk, QuotaExceededError in OPFS) while writing a
 *   checkpoint: the store has already removed its partial file and the previous checkpoint is
 *   intact. The run PAUSES (it does not go on without a way to save progress): the weights stay
 *   in GPU memory, `run()` resolves 'paused' with `pausedFor: 'storage-full'`, and a later
 *   `run()` writes that missed checkpoint first, then continues.
 * - f16's range exceeded (Trainer.pauseCause 'f16-range': gradients non-finite even at loss
 *   scale 1 with a finite loss): where the platform allows (`fallbackToF32`), the run goes on in
 *   f32 from the checkpoint written at the pause, on a rebuilt Context; otherwise it stays paused
 *   with the message.
 * - Checkpoint cadence by time (`checkpointEveryMs`): the trainer is paused silently after the
 *   current step (its `train()` writes a checkpoint with a consistent run position) and started
 *   again at once. `checkpointNow()` does the same on demand, before an operation that can
 *   lose the device. Checkpointing from outside the loop would read weights while later steps
 *   are being recorded.
 *
 * The Trainer's own loop is not changed; this file only wraps it.
 */
import { GpuDeviceLostError } from '../gpu/errors.ts';
import type { NamedArray } from '../io/state-dict.ts';
import type { Trainer, TrainerState } from './trainer.ts';

export interface BuiltTrainer {
  trainer: Trainer;
  /** Frees the Context and destroys the Gpu (called on a lost device; errors are ignored). */
  dispose(): void;
}

export interface CheckpointData {
  arrays: ReadonlyMap<string, NamedArray>;
  metadata: Record<string, string>;
}

/** What the device is doing, for a status line (the run log gets `notice` lines too). */
export type DeviceStatus =
  /** Lost; a new device is being built (`loss` of at most `max` within the hour). */
  | { kind: 'lost'; message: string; loss: number; max: number }
  /** No device can be had right now; the next try is in `retryInMs`. */
  | { kind: 'waiting'; message: string; retryInMs: number }
  /** Training again on a new device, from the checkpoint at `step` (0: none). */
  | { kind: 'resumed'; step: number }
  /** Lost too often: the run ended (the newest checkpoint is kept). */
  | { kind: 'gave-up'; message: string };

export interface SupervisorHooks {
  /** A new Gpu, Context and Trainer. `attempt` is 0 first, then 1, 2... after each device loss. */
  build(attempt: number): Promise<BuiltTrainer>;
  /** The newest checkpoint of this run, or null when there is none (rebuilds then start at step 0). */
  latest(): Promise<CheckpointData | null>;
  notice?(message: string): void;
  status?(status: DeviceStatus): void;
  /** Device losses survived within any hour (default 3). */
  maxLossesPerHour?: number;
  /** Milliseconds between automatic checkpoints (0 or absent: none by time). */
  checkpointEveryMs?: number;
  /** Waits between tries to build a device when none can be had (the last repeats). */
  deviceRetryMs?: readonly number[];
  /**
   * The trainer paused because f16's range was exceeded (Trainer.pauseCause 'f16-range'):
   * return true when `build` will make f32 trainers from now on, and the supervisor rebuilds
   * and trains on in f32 from the newest checkpoint (written at the pause: the skipped steps
   * changed no weight). Absent or false: the pause stands, with its message.
   */
  fallbackToF32?(): boolean;
  /** The clock (ms); tests pass their own. */
  now?(): number;
}

export interface SupervisedResult {
  state: TrainerState;
  step: number;
  /** Devices rebuilt during this `run()`. */
  rebuilds: number;
  /** Why the run paused on a fault, if it did. */
  pausedFor?: 'storage-full';
  /** The message for that pause. */
  reason?: string;
}

/** The device was lost more often than `maxLossesPerHour`: the run ends; its checkpoints are kept. */
export class DeviceUnstableError extends Error {
  override name = 'DeviceUnstableError';
}

const HOUR_MS = 3_600_000;

/**
 * Rejects when the trainer's device is lost: a step waiting on a read that the loss never
 * settles must not hold the run (the abandoned `train()` ends by itself at its next GPU call).
 */
function lostSignal(trainer: Trainer): Promise<never> {
  const signal = trainer.ctx.gpu.device.lost.then((info) => {
    throw new GpuDeviceLostError(info.reason, info.message);
  });
  signal.catch(() => {}); // also rejects when the device is destroyed on purpose, after the run
  return signal;
}
const DEFAULT_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];
/** How long a failed step may take to show that the device was lost (device.lost settles after the failed read). */
const LOSS_SETTLE_MS = 2_000;

/** True for "the disk / the origin's quota is full", however the platform said it. */
export function isStorageFull(err: unknown): boolean {
  for (let e = err as { code?: unknown; name?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.name === 'QuotaExceededError') return true;
  }
  return false;
}

export function isDeviceLost(err: unknown): boolean {
  return err instanceof GpuDeviceLostError || (err as Error | undefined)?.name === 'GpuDeviceLostError';
}

/**
 * Whether `err` came from a lost device: said so, or the device's `lost` promise settles soon
 * (a read aborted by the loss can reject before the device reports it).
 */
async function fromLostDevice(err: unknown, trainer: Trainer): Promise<boolean> {
  if (isDeviceLost(err)) return true;
  const gpu = trainer.ctx.gpu;
  if (gpu.isLost) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), LOSS_SETTLE_MS)));
  const lost = await Promise.race([gpu.device.lost.then(() => true), late]);
  clearTimeout(timer);
  return lost;
}

export class Supervisor {
  private built: BuiltTrainer | null = null;
  private attempts = 0;
  /** A checkpoint failed for lack of space: write it before training on. */
  private unsaved = false;
  /** When each device loss happened (ms), for the per-hour limit. */
  private losses: number[] = [];
  /** The trainer was paused by this supervisor to write a checkpoint (not by the user). */
  private savingPause = false;
  /** Settle the promises of `checkpointNow`: true once its checkpoint is written, false when the run failed first. */
  private onSaved: ((written: boolean) => void)[] = [];
  /** Ends the wait between tries to build a device (a stop should not wait for it). */
  private wake: (() => void) | null = null;
  private cadence: ReturnType<typeof setTimeout> | null = null;
  /** What the user asked for while the supervisor held the trainer paused or was rebuilding. */
  private wanted: 'run' | 'pause' | 'stop' = 'run';

  constructor(private hooks: SupervisorHooks) {}

  /** The current trainer (after the first `run()` has built it). */
  get trainer(): Trainer | null {
    return this.built?.trainer ?? null;
  }

  /** Builds the first trainer now (so the caller can restore a checkpoint or read the model). */
  async start(): Promise<Trainer> {
    this.built ??= await this.hooks.build(this.attempts++);
    return this.built.trainer;
  }

  /** Trains to `untilStep` (default: the end), surviving device losses; see the file comment. */
  async run(untilStep?: number): Promise<SupervisedResult> {
    let rebuilds = 0;
    this.wanted = 'run';
    for (;;) {
      const trainer = await this.start();
      try {
        if (this.unsaved) {
          await trainer.checkpoint();
          this.unsaved = false;
        }
        this.armCadence(trainer);
        const training = trainer.train(untilStep);
        training.catch(() => {}); // a loss can be reported by lostSignal first; this one settles later
        const state = await Promise.race([training, lostSignal(trainer)]);
        this.disarmCadence();
        if (state === 'paused' && this.savingPause) {
          this.savingPause = false;
          for (const done of this.onSaved.splice(0)) done(true);
          // The checkpoint of this position is written: honour a pause or stop asked for meanwhile.
          if (this.wanted === 'run') continue;
          if (this.wanted === 'stop') trainer.state = 'stopped';
          else this.hooks.notice?.('paused: paused by the user');
          return { state: trainer.state, step: trainer.step, rebuilds };
        }
        if (state === 'paused' && trainer.pauseCause === 'f16-range' && this.wanted === 'run' && this.hooks.fallbackToF32?.()) {
          await this.rebuildInF32(trainer.step);
          continue;
        }
        return { state, step: trainer.step, rebuilds };
      } catch (err) {
        this.disarmCadence();
        this.savingPause = false;
        this.failSaves();
        if (isStorageFull(err)) return this.pauseForStorage(trainer, err as Error, rebuilds);
        if (!(await fromLostDevice(err, trainer))) throw err;
        rebuilds++;
        const resumed = await this.recover(err as Error);
        if (!resumed) return { state: 'stopped', step: this.trainer?.step ?? trainer.step, rebuilds };
        if (this.wanted !== 'run') {
          // Asked to pause or stop while the device was rebuilt: the restored position is the checkpoint's.
          const next = this.trainer!;
          next.state = this.wanted === 'stop' ? 'stopped' : 'paused';
          return { state: next.state, step: next.step, rebuilds };
        }
      }
    }
  }

  /** Pauses after the current step (a checkpoint is written), also while a checkpoint or a rebuild is under way. */
  pause(): void {
    if (this.wanted === 'stop') return;
    this.wanted = 'pause';
    this.trainer?.pause();
  }

  /** Stops after the current step (a checkpoint is written), also while waiting for a device. */
  stop(): void {
    this.wanted = 'stop';
    this.wake?.();
    const trainer = this.trainer;
    if (!trainer) return;
    if (trainer.state === 'paused' && this.savingPause) return; // run() turns it into 'stopped' when the save ends
    trainer.stop();
  }

  /**
   * Writes a checkpoint of the running trainer's current position before something that can
   * lose the device (an evaluation or a demo on the training device). Resolves once it is
   * written; at once when the trainer is not running (a paused or ended run has one).
   */
  checkpointNow(): Promise<void> {
    const trainer = this.trainer;
    if (!trainer || trainer.state !== 'running') return Promise.resolve();
    const saved = new Promise<void>((resolve, reject) =>
      this.onSaved.push((written) => (written ? resolve() : reject(new Error('the run failed before its checkpoint was written')))),
    );
    this.savePause(trainer);
    return saved;
  }

  /** Frees the current Gpu/Context. */
  dispose(): void {
    this.disarmCadence();
    this.built?.dispose();
    this.built = null;
  }

  private savePause(trainer: Trainer): void {
    if (trainer.state !== 'running') return;
    this.savingPause = true;
    // An empty reason: the trainer writes its checkpoint but logs no "paused: ..." line.
    trainer.pause('');
  }

  private armCadence(trainer: Trainer): void {
    const every = this.hooks.checkpointEveryMs ?? 0;
    if (every <= 0) return;
    this.disarmCadence();
    this.cadence = setTimeout(() => this.savePause(trainer), every);
  }

  private disarmCadence(): void {
    if (this.cadence !== null) clearTimeout(this.cadence);
    this.cadence = null;
  }

  private failSaves(): void {
    for (const done of this.onSaved.splice(0)) done(false);
  }

  private pauseForStorage(trainer: Trainer, err: Error, rebuilds: number): SupervisedResult {
    // The Trainer stopped mid-loop; its weights and position are still good. Mark it paused
    // so a later run() may call train() again, writing the missed checkpoint first.
    trainer.state = 'paused';
    this.unsaved = true;
    const reason =
      `${err.message} Training is paused at step ${trainer.step} with the weights kept in memory: ` +
      'free some space (or delete old runs), then resume; the checkpoint is written again first.';
    this.hooks.notice?.(`paused: ${reason}`);
    return { state: 'paused', step: trainer.step, rebuilds, pausedFor: 'storage-full', reason };
  }

  /**
   * After a device loss: counts it against the hourly limit, builds a new device (waiting
   * while none can be had) and restores the newest checkpoint. False when stopped meanwhile.
   */
  private async recover(err: Error): Promise<boolean> {
    const now = this.hooks.now?.() ?? Date.now();
    const max = this.hooks.maxLossesPerHour ?? 3;
    this.losses = this.losses.filter((t) => now - t < HOUR_MS);
    this.losses.push(now);
    const dead = this.built!;
    this.built = null;
    try {
      dead.dispose();
    } catch {
      /* the device is gone; its buffers go with it */
    }
    const lostMessage = isDeviceLost(err) ? err.message : `The GPU device was lost: ${err.message}.`;
    if (this.losses.length > max) {
      const message =
        `${lostMessage} The GPU device was lost ${this.losses.length} times within an hour, more than the ${max} this run recovers from: ` +
        'training has stopped and its newest checkpoint is kept. The GPU or its driver is unstable: close other GPU-heavy tabs and programs, ' +
        'update the GPU driver or lower the batch size, then resume the run.';
      this.hooks.status?.({ kind: 'gave-up', message });
      throw new DeviceUnstableError(message);
    }
    this.hooks.notice?.(
      `${lostMessage} Rebuilding the GPU device and resuming from the last checkpoint (${this.losses.length} of at most ${max} per hour).`,
    );
    this.hooks.status?.({ kind: 'lost', message: lostMessage, loss: this.losses.length, max });
    const next = await this.buildWhenPossible();
    if (!next) return false;
    await this.restoreLatest(next);
    this.hooks.status?.({ kind: 'resumed', step: next.step });
    return true;
  }

  /** After an f16-range pause: a new trainer (`build` now makes f32 ones) from the newest checkpoint. */
  private async rebuildInF32(step: number): Promise<void> {
    const old = this.built!;
    this.built = null;
    old.dispose();
    const next = await this.start();
    await this.restoreLatest(next);
    this.hooks.notice?.(`f16's range was exceeded at step ${step}: training goes on in f32 from the checkpoint at step ${next.step}`);
  }

  /** Restores the newest checkpoint into `next` (a fresh run from step 0 when there is none). */
  private async restoreLatest(next: Trainer): Promise<void> {
    const checkpoint = await this.hooks.latest();
    if (checkpoint) {
      next.restore(checkpoint.arrays, checkpoint.metadata);
      this.hooks.notice?.(`resumed from the checkpoint at step ${next.step}`);
    } else {
      this.hooks.notice?.('no checkpoint yet: the run starts again from step 0');
    }
  }

  /** A new trainer; while none can be built, says so and tries again with backoff. Null when stopped. */
  private async buildWhenPossible(): Promise<Trainer | null> {
    const waits = this.hooks.deviceRetryMs ?? DEFAULT_RETRY_MS;
    for (let tries = 0; ; tries++) {
      if (this.wanted === 'stop') return null;
      try {
        return await this.start();
      } catch (err) {
        const wait = waits[Math.min(tries, waits.length - 1)] ?? 1_000;
        const message =
          `No GPU device can be had right now (${(err as Error).message}). The run waits and tries again in ${Math.round(wait / 1000)} s; ` +
          'its newest checkpoint is kept. If this lasts, close other GPU-heavy tabs, reload the page or restart the browser (the run can be resumed after a reload).';
        this.hooks.notice?.(message);
        this.hooks.status?.({ kind: 'waiting', message, retryInMs: wait });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => (clearTimeout(timer), resolve());
        });
        this.wake = null;
      }
    }
  }
}
