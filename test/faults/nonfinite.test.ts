/**
 * Non-finite values end to end, in Node on SwiftShader with the tiny trainer.
 * The hook (test/helpers/poison.ts): on chosen steps, one gradient element becomes NaN on the
 * GPU just before the LAMB update (recorded in order with the step's other commands, as a real
 * overflow would leave it). Checked:
 * - isolated poisoned steps are skipped (weights and moments untouched, the LAMB tests check
 *   that per tensor), counted in the metrics and reported, and the run finishes;
 * - repeated ones pause the run with the explanation, and the checkpoint written on pausing
 *   holds exactly the parameters and moments of the last good step.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { NodeCheckpointStore } from '../../src/platform/node/checkpoint-store.ts';
import type { StepMetrics } from '../../src/train/trainer.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from '../train/tiny-run.ts';
import { poison } from '../helpers/poison.ts';

const weights = (path: string) => readWeightFile(new Uint8Array(readFileSync(path)), path);

describe('non-finite gradients', () => {
  const getCtx = useContext();

  it('isolated NaN steps are skipped, counted and reported; the run finishes', async () => {
    const ctx = getCtx();
    const dir = mkdtempSync(join(tmpdir(), 'webspark-nan-'));
    const metrics: StepMetrics[] = [];
    const notices: string[] = [];
    const { trainer, store } = await tinyTrainer(ctx, tinyConfig(4), dir, { metrics: (m) => void metrics.push(m), notice: (m) => void notices.push(m) });
    poison(trainer, (s) => s === 1 || s === 3);
    expect(await trainer.train()).toBe('finished');
    ctx.dispose();
    expect(metrics.map((m) => m.skippedStep)).toEqual([false, true, false, true]);
    expect(metrics.map((m) => m.skippedSteps)).toEqual([0, 1, 1, 2]);
    expect(notices.filter((n) => /non-finite gradients/.test(n)).map((n) => n.split(':')[0])).toEqual(['step 1', 'step 3']);
    const end = weights(store.latest()!.path);
    expect(JSON.parse(end.metadata['webspark.run']!).skippedSteps).toBe(2);
    // Weights, BN statistics and moments are finite; `optimizer.step_state` is skipped: it
    // records the last step's status, whose gradient norm is the NaN that was injected.
    for (const [key, a] of end.arrays) {
      if (key.endsWith('step_state')) continue;
      expect([...a.data].every((v) => Number.isFinite(Number(v))), key).toBe(true);
    }
  }, 400_000); // a few tiny steps, but SwiftShader on a CPU shared with other jobs

  it('repeated NaN steps pause the run with an explanation; the paused checkpoint keeps the last good weights', async () => {
    const ctx = getCtx();
    const dir = mkdtempSync(join(tmpdir(), 'webspark-nan-pause-'));
    const notices: string[] = [];
    const config = { ...tinyConfig(10), checkpointEvery: 1, maxConsecutiveSkips: 2 };
    const { trainer } = await tinyTrainer(ctx, config, dir, { notice: (m) => void notices.push(m) });
    poison(trainer, (s) => s >= 1);
    expect(await trainer.train()).toBe('paused');
    ctx.dispose();
    const paused = notices.find((n) => n.startsWith('paused: '));
    expect(paused).toMatch(/^paused: 2 steps in a row had non-finite gradients\. The weights are unchanged since the last good step; lower the learning rate \(--base-lr\) or check the data, then resume\.$/);
    const store = new NodeCheckpointStore(dir, 100);
    const good = weights(join(dir, NodeCheckpointStore.nameFor(1)));
    const last = weights(store.latest()!.path);
    expect(store.latest()!.step).toBeGreaterThanOrEqual(3);
    // Parameters and optimizer moments are bit for bit those of step 1; BatchNorm running
    // statistics move (the forward passes ran), so they are not compared.
    const names = trainer.model.namedParameters().map(([n]) => n);
    let compared = 0;
    for (const [key, a] of good.arrays) {
      if (!names.some((n) => key === n || key.endsWith(`.${n}`) || key.startsWith(`${n}.`) || key.includes(`${n}.exp_avg`))) continue;
      expect(Buffer.from(last.arrays.get(key)!.data.buffer).equals(Buffer.from(a.data.buffer)), key).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(names.length);
  }, 400_000);
});
