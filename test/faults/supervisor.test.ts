/**
 * Faults the supervisor handles, in Node on a CPU adapter with the tiny trainer of
 * test/train/tiny-run.ts:
 * - the GPU device is destroyed mid-run: the supervisor rebuilds Gpu/Context/Trainer, resumes
 *   from the last checkpoint and finishes at the right step with the weights of an
 *   uninterrupted run resumed from that same checkpoint;
 * - the disk is full while a checkpoint is written (a real ENOSPC: the store's temporary file is
 *   a link to /dev/full): the run pauses with a message, the previous checkpoint is intact, no
 *   partial file is left, and after "freeing space" the run continues to the end.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { NodeCheckpointStore } from '../../src/platform/node/checkpoint-store.ts';
import { createNodeGpu } from '../../src/platform/node/gpu.ts';
import { Context } from '../../src/tensor/context.ts';
import { Supervisor } from '../../src/train/supervisor.ts';
import type { TrainConfig, TrainerEvents } from '../../src/train/trainer.ts';
import { expectClose } from '../helpers/check.ts';
import { tinyConfig, tinyTrainer } from '../train/tiny-run.ts';

// Small on purpose: SwiftShader steps are slow on a shared CPU.
const TOTAL = 4;
const EVERY = 2;

function supervised(dir: string, config: TrainConfig, events: TrainerEvents = {}, onBuild?: (ctx: Context, attempt: number) => void) {
  const notices: string[] = [];
  const contexts: Context[] = [];
  const sup = new Supervisor({
    async build(attempt) {
      const ctx = new Context(await createNodeGpu());
      contexts.push(ctx);
      onBuild?.(ctx, attempt);
      const { trainer } = await tinyTrainer(ctx, config, dir, events);
      return {
        trainer,
        dispose: () => {
          ctx.dispose();
          ctx.gpu.destroy();
        },
      };
    },
    async latest() {
      const c = new NodeCheckpointStore(dir, 10).latest();
      return c ? readWeightFile(new Uint8Array(readFileSync(c.path)), c.path) : null;
    },
    notice: (m) => void notices.push(m),
  });
  return { sup, notices, contexts };
}

function weights(path: string) {
  return readWeightFile(new Uint8Array(readFileSync(path)), path);
}

describe('supervised runs', () => {
  // Generous timeouts: a handful of tiny steps, but on SwiftShader on a CPU shared with others.
  it('a GPU device destroyed mid-run is rebuilt; the run finishes with the weights of a clean resume', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webspark-lost-'));
    const config = { ...tinyConfig(TOTAL), checkpointEvery: EVERY };
    let current: Context | null = null;
    let destroyed = false;
    let lostAt = -1;
    const { sup, notices } = supervised(
      dir,
      config,
      {
        metrics: (m) => {
          // After step 3's numbers arrive (the checkpoint of step 2 is on disk), pull the device
          // out from under the trainer as a driver reset would: the raw GPUDevice, not Gpu.destroy().
          if (!destroyed && m.step === EVERY) {
            destroyed = true;
            lostAt = m.step;
            current!.gpu.device.destroy();
          }
        },
      },
      (ctx) => void (current = ctx),
    );
    const result = await sup.run();
    sup.dispose();
    expect(lostAt).toBe(EVERY);
    expect(result).toEqual({ state: 'finished', step: TOTAL, rebuilds: 1 });
    expect(notices.join('\n')).toMatch(/The GPU device was lost \(destroyed\).*Rebuilding the GPU device/s);
    expect(notices).toContain(`resumed from the checkpoint at step ${EVERY}`);

    // The reference: a fresh trainer resumed from the same step-2 checkpoint, run to the end.
    const ref = mkdtempSync(join(tmpdir(), 'webspark-lost-ref-'));
    const mid = join(ref, 'mid.safetensors');
    copyFileSync(join(dir, NodeCheckpointStore.nameFor(EVERY)), mid);
    const ctx = new Context(await createNodeGpu());
    const { trainer, store } = await tinyTrainer(ctx, config, ref);
    const m = weights(mid);
    trainer.restore(m.arrays, m.metadata);
    expect(await trainer.train()).toBe('finished');
    ctx.dispose();
    ctx.gpu.destroy();
    const a = weights(store.latest()!.path);
    const b = weights(new NodeCheckpointStore(dir, 10).latest()!.path);
    expect(new NodeCheckpointStore(dir, 10).latest()!.step).toBe(TOTAL);
    expect([...b.arrays.keys()]).toEqual([...a.arrays.keys()]);
    // Same kernels in the same order on the same adapter (as test/train/resume.test.ts).
    for (const [key, va] of a.arrays) expectClose(b.arrays.get(key)!.data, va.data, { atol: 1e-6, rtol: 1e-5 }, key);
    expect(JSON.parse(b.metadata['webspark.run']!).cursor).toEqual(JSON.parse(a.metadata['webspark.run']!).cursor);
  }, 400_000);

  it('disk full during a checkpoint: paused with a message, previous checkpoint intact, then continues', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webspark-full-'));
    const config = { ...tinyConfig(3), checkpointEvery: 1 };
    // The store writes checkpoint 2 to `<name>.partial-<pid>`: make that a link to /dev/full,
    // whose writes fail with ENOSPC, so the failure comes from the kernel through the real path.
    const partial = join(dir, `${NodeCheckpointStore.nameFor(2)}.partial-${process.pid}`);
    const { sup, notices } = supervised(dir, config);
    await sup.start();
    symlinkSync('/dev/full', partial);
    const first = await sup.run();
    expect(first.state).toBe('paused');
    expect(first.step).toBe(2);
    expect(first.reason).toMatch(/could not write checkpoint .*: the disk is full\. The previous checkpoint is intact\. Training is paused at step 2 /);
    expect(notices.at(-1)).toBe(`paused: ${first.reason}`);
    const store = new NodeCheckpointStore(dir, 10);
    expect(store.list().map((c) => c.step)).toEqual([1]);
    expect(existsSync(partial)).toBe(false);
    expect(readdirSync(dir).some((n) => n.includes('.partial'))).toBe(false);
    expect(weights(store.latest()!.path).arrays.size).toBeGreaterThan(0); // still a readable file

    // Space freed (the link is gone): the same supervisor continues from step 2 to the end.
    const second = await sup.run();
    sup.dispose();
    expect(second).toEqual({ state: 'finished', step: 3, rebuilds: 0 });
    expect(new NodeCheckpointStore(dir, 10).list().map((c) => c.step)).toEqual([1, 2, 3]);
  }, 400_000);
});
