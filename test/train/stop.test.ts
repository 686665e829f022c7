/** Stop on a paused run ends it (the app's Stop button while paused; the checkpoint stays the paused step's). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'webspark-stop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stop', () => {
  it('a paused trainer becomes stopped, its paused checkpoint is the latest, and a running trainer is stopped after its step', async () => {
    const gpu = await createNodeGpu();
    const ctx = new Context(gpu);
    let pauseAt = 1;
    const { trainer, store } = await tinyTrainer(ctx, tinyConfig(6), dir, {
      metrics: (m) => {
        if (m.step === pauseAt) trainer.pause();
      },
    });
    expect(await trainer.train()).toBe('paused');
    const pausedStep = trainer.step;
    expect(pausedStep).toBeGreaterThanOrEqual(2);
    expect((await store.list()).at(-1)?.step).toBe(pausedStep);
    trainer.stop();
    expect(trainer.state).toBe('stopped');
    expect((await store.list()).at(-1)?.step).toBe(pausedStep);
    // Stop while running: the loop ends after the step in flight, with a checkpoint of it.
    pauseAt = -1;
    const running = trainer.train(pausedStep + 2);
    trainer.stop();
    expect(await running).toBe('stopped');
    expect(trainer.step).toBeLessThan(pausedStep + 2);
    expect((await store.list()).at(-1)?.step).toBe(trainer.step);
    trainer.dispose();
    ctx.dispose();
    gpu.destroy();
  }, 120_000);
});
