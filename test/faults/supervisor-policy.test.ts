/**
 * The supervisor's policies, on a stand-in trainer (no GPU, steps of a few ms), so every path
 * runs in milliseconds: the hourly limit on device losses, waiting while no device can be had,
 * checkpoints by time (silent, and a user's pause or stop during one is honoured), and
 * `checkpointNow` before an operation that can lose the device. The real rebuild on a real
 * device is test/faults/supervisor.test.ts (Node) and test/app/gpu-faults.test.ts (the tab).
 */
import { describe, expect, it } from 'vitest';
import { GpuDeviceLostError } from '../../src/gpu/errors.ts';
import { DeviceUnstableError, Supervisor, type DeviceStatus, type SupervisorHooks } from '../../src/train/supervisor.ts';
import type { Trainer, TrainerState } from '../../src/train/trainer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a stand-in run shares across its rebuilt trainers: checkpoints and faults to inject. */
class World {
  /** Steps of the checkpoints written, in order. */
  saved: number[] = [];
  /** Steps at which the device is lost (each once). */
  lossAt: number[] = [];
  /** Builds that fail before one succeeds, after the first. */
  failingBuilds = 0;
  builds = 0;
  notices: string[] = [];
  statuses: DeviceStatus[] = [];
  clock = 0;

  constructor(readonly total: number, readonly stepMs = 2) {}

  hooks(extra: Partial<SupervisorHooks> = {}): SupervisorHooks {
    return {
      build: async () => {
        if (this.builds++ > 0 && this.failingBuilds > 0) {
          this.failingBuilds--;
          throw new Error('No WebGPU adapter is available');
        }
        const trainer = new FakeTrainer(this);
        return { trainer: trainer as unknown as Trainer, dispose: () => {} };
      },
      latest: async () => {
        const step = this.saved.at(-1);
        return step === undefined ? null : { arrays: new Map(), metadata: { step: String(step) } };
      },
      notice: (m) => void this.notices.push(m),
      status: (s) => void this.statuses.push(s),
      deviceRetryMs: [1, 2],
      now: () => this.clock,
      ...extra,
    };
  }
}

class FakeTrainer {
  state: TrainerState = 'idle';
  step = 0;
  private lost = false;
  readonly ctx: { gpu: { isLost: boolean; device: { lost: Promise<unknown> } } };

  constructor(private world: World) {
    const self = this;
    this.ctx = { gpu: { get isLost() { return self.lost; }, device: { lost: new Promise(() => {}) } } };
  }

  restore(_arrays: unknown, metadata: Record<string, string>): void {
    this.step = Number(metadata.step);
  }

  async checkpoint(): Promise<string> {
    this.world.saved.push(this.step);
    return `step-${this.step}`;
  }

  pause(reason = 'paused by the user'): void {
    if (this.state !== 'running') return;
    this.state = 'paused';
    if (reason) this.world.notices.push(`paused: ${reason}`);
  }

  stop(): void {
    if (this.state === 'running' || this.state === 'paused') this.state = 'stopped';
  }

  async train(until = this.world.total): Promise<TrainerState> {
    this.state = 'running';
    while (this.state === 'running' && this.step < until) {
      await sleep(this.world.stepMs);
      const k = this.world.lossAt.indexOf(this.step);
      if (k >= 0) {
        this.world.lossAt.splice(k, 1);
        this.lost = true;
        throw new GpuDeviceLostError('unknown', 'A valid external Instance reference no longer exists.');
      }
      this.step++;
    }
    if (this.state === 'running') this.state = this.step >= this.world.total ? 'finished' : 'stopped';
    await this.checkpoint();
    return this.state;
  }
}

describe('supervisor policies (stand-in trainer)', () => {
  it('recovers from 3 device losses within an hour, gives up on the 4th, and counts only the last hour', async () => {
    const w = new World(20);
    w.lossAt = [3, 6, 9];
    const sup = new Supervisor(w.hooks({ checkpointEveryMs: 0 }));
    // No checkpoint before the first loss: the run starts again from step 0 each time.
    expect(await sup.run()).toMatchObject({ state: 'finished', step: 20, rebuilds: 3 });
    expect(w.notices.filter((n) => n.includes('Rebuilding the GPU device')).map((n) => n.match(/\((\d) of at most 3 per hour\)/)![1])).toEqual(['1', '2', '3']);
    expect(w.statuses.filter((s) => s.kind === 'resumed')).toHaveLength(3);

    // A fourth loss 59 minutes later is one too many; one 61 minutes after the first is not.
    const again = new World(20);
    again.lossAt = [2, 4, 6, 8];
    const limited = new Supervisor(again.hooks({ now: () => again.clock }));
    const run = limited.run();
    await expect(run).rejects.toBeInstanceOf(DeviceUnstableError);
    await expect(run).rejects.toThrow(/lost 4 times within an hour.*newest checkpoint is kept.*update the GPU driver/s);
    expect(again.statuses.at(-1)?.kind).toBe('gave-up');

    const spaced = new World(20);
    spaced.lossAt = [2, 4, 6, 8];
    let t = 0;
    const sup2 = new Supervisor(spaced.hooks({ now: () => (t += 20 * 60_000) })); // 20 min apart: at most 3 in any hour
    expect(await sup2.run()).toMatchObject({ state: 'finished', rebuilds: 4 });
  });

  it('waits while no device can be had, says so, and resumes from the newest checkpoint when one is back', async () => {
    const w = new World(12);
    w.lossAt = [7];
    w.failingBuilds = 3;
    const sup = new Supervisor(w.hooks());
    await sup.start();
    expect(await sup.run(5)).toMatchObject({ state: 'stopped', step: 5 }); // a checkpoint at step 5
    expect(await sup.run()).toMatchObject({ state: 'finished', step: 12, rebuilds: 1 });
    const kinds = w.statuses.map((s) => s.kind);
    expect(kinds).toEqual(['lost', 'waiting', 'waiting', 'waiting', 'resumed']);
    expect((w.statuses[1] as { message: string }).message).toMatch(/No GPU device can be had right now \(No WebGPU adapter is available\)\. The run waits and tries again/);
    expect(w.statuses.at(-1)).toEqual({ kind: 'resumed', step: 5 });
    expect(w.notices).toContain('resumed from the checkpoint at step 5');
  });

  it('a stop while waiting for a device ends the wait and the run', async () => {
    const w = new World(12);
    w.lossAt = [2];
    w.failingBuilds = 1_000;
    const sup = new Supervisor(w.hooks({ deviceRetryMs: [60_000] }));
    const run = sup.run();
    while (!w.statuses.some((s) => s.kind === 'waiting')) await sleep(1);
    sup.stop();
    expect(await run).toMatchObject({ state: 'stopped' });
  });

  it('checkpoints by time without a pause in the log, and honours a pause or a stop asked for during one', async () => {
    const w = new World(60, 3);
    const sup = new Supervisor(w.hooks({ checkpointEveryMs: 25 }));
    expect(await sup.run()).toMatchObject({ state: 'finished', step: 60 });
    expect(w.saved.length).toBeGreaterThan(2); // timed ones and the end
    expect(w.saved.at(-1)).toBe(60);
    expect(w.notices.filter((n) => n.startsWith('paused'))).toEqual([]);

    const p = new World(1_000, 3);
    const paused = new Supervisor(p.hooks({ checkpointEveryMs: 1 }));
    const run = paused.run();
    await sleep(20);
    paused.pause();
    const r = await run;
    expect(r.state).toBe('paused');
    expect(p.saved.at(-1)).toBe(r.step);
    expect(p.notices.filter((n) => n === 'paused: paused by the user')).toHaveLength(1);

    const s = new World(1_000, 3);
    const stopped = new Supervisor(s.hooks({ checkpointEveryMs: 1 }));
    const run2 = stopped.run();
    await sleep(20);
    stopped.stop();
    const r2 = await run2;
    expect(r2.state).toBe('stopped');
    expect(s.saved.at(-1)).toBe(r2.step);
  });

  it('checkpointNow writes the running position and training goes on', async () => {
    const w = new World(40, 3);
    const sup = new Supervisor(w.hooks());
    const run = sup.run();
    await sleep(15);
    await sup.checkpointNow();
    const at = w.saved.at(-1)!;
    expect(at).toBeGreaterThan(0);
    expect(await run).toMatchObject({ state: 'finished', step: 40 });
    expect(w.saved).toEqual([at, 40]);
  });
});
