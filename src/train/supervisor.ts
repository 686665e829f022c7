/**
 * Keeps a run going through faults the Trainer cannot handle alone. Platform-free: the CLI and
 * the worker give it a `build` that makes a Gpu + Context + Trainer, and `latest` that reads the
 * newest checkpoint.
 *
 * - GPU device lost (driver reset, `device.destroy()`, a tab in the background too long): the
 *   GPU's copy of everything since the last checkpoint is gone. The supervisor disposes the dead
 *   Gpu/Context, builds new ones, restores the last checkpoint and trains on, without a page
 *   reload or a new process. It gives up after `maxRebuilds` losses in one `run()`.
 * - Storage full (ENOSPC/EDQUOT on disk, QuotaExceededError in OPFS) while writing a
 *   checkpoint: the store has already removed its partial file and the previous checkpoint is
 *   intact. The run PAUSES (it does not go on without a way to save progress): the weights stay
 *   in GPU memory, `run()` resolves 'paused' with a message saying to free space, and a later
 *   `run()` continues from the step it reached, writing that checkpoint first thing at its end.
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

export interface SupervisorHooks {
  /** A new Gpu, Context and Trainer. `attempt` is 0 first, then 1, 2... after each device loss. */
  build(attempt: number): Promise<BuiltTrainer>;
  /** The newest checkpoint of this run, or null when there is none (rebuilds then start at step 0). */
  latest(): Promise<CheckpointData | null>;
  notice?(message: string): void;
  /** Device losses survived per `run()` (default 3). */
  maxRebuilds?: number;
}

export interface SupervisedResult {
  state: TrainerState;
  step: number;
  /** Devices rebuilt during this `run()`. */
  rebuilds: number;
  /** Why the run paused on a fault (storage full), if it did. */
  reason?: string;
}

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

export class Supervisor {
  private built: BuiltTrainer | null = null;
  private attempts = 0;
  /** A checkpoint failed for lack of space: write it before training on. */
  private unsaved = false;

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
    const max = this.hooks.maxRebuilds ?? 3;
    for (;;) {
      const trainer = await this.start();
      try {
        if (this.unsaved) {
          await trainer.checkpoint();
          this.unsaved = false;
        }
        const state = await trainer.train(untilStep);
        return { state, step: trainer.step, rebuilds };
      } catch (err) {
        if (isStorageFull(err)) {
          // The Trainer stopped mid-loop; its weights and position are still good. Mark it
          // paused so a later run() may call train() again.
          trainer.state = 'paused';
          this.unsaved = true;
          const reason =
            `${(err as Error).message} Training is paused at step ${trainer.step} with the weights kept in memory: ` +
            'free some space (or delete old runs), then resume; the checkpoint is written again first.';
          this.hooks.notice?.(`paused: ${reason}`);
          return { state: 'paused', step: trainer.step, rebuilds, reason };
        }
        if (!isDeviceLost(err) || rebuilds >= max) throw err;
        rebuilds++;
        this.hooks.notice?.(
          `${(err as Error).message} Rebuilding the GPU device and resuming from the last checkpoint (${rebuilds} of at most ${max}).`,
        );
        const dead = this.built!;
        this.built = null;
        try {
          dead.dispose();
        } catch {
          /* the device is gone; its buffers go with it */
        }
        const next = await this.start();
        const checkpoint = await this.hooks.latest();
        if (checkpoint) {
          next.restore(checkpoint.arrays, checkpoint.metadata);
          this.hooks.notice?.(`resumed from the checkpoint at step ${next.step}`);
        } else {
          this.hooks.notice?.('no checkpoint yet: the run starts again from step 0');
        }
      }
    }
  }

  /** Frees the current Gpu/Context. */
  dispose(): void {
    this.built?.dispose();
    this.built = null;
  }
}
