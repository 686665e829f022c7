/**
 * Training with tuned conv kernels (TrainerOptions.autotune): the step recorded after tuning
 * uses the chosen configurations, and replaying it equals recording every step anew, bit for
 * bit (as test/train/replay.test.ts checks for the untuned kernels).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resetConvTuning, type TuneOptions } from '../../src/ops/autotune.ts';
import { registry } from '../../src/ops/conv-tuning.ts';
import type { Context } from '../../src/tensor/context.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

// Step 0 eager, tuning, step 1 recorded, step 2 replayed.
const STEPS = 3;

// The choice must not depend on timing, or the two runs could choose differently: 'last'
// takes the last candidate that passes its checks, here one that changes tiles, blocks and
// the split-K chunking (so summation order too) of every conv GEMM.
const TUNE: TuneOptions = {
  candidates: () => [{}, { rb: 8, tm: 32, minChunkRows: 16 }],
  choose: 'last',
  budgetMs: 0,
};

async function run(ctx: Context, replay: boolean) {
  resetConvTuning(ctx);
  const losses: number[] = [];
  const { trainer } = await tinyTrainer(
    ctx,
    { ...tinyConfig(STEPS), warmupSteps: STEPS, batchSize: 2, maxInFlight: 0 },
    mkdtempSync(join(tmpdir(), `webspark-autotune-${replay}-`)),
    { metrics: (m) => void losses.push(m.loss) },
    { replay, autotune: TUNE },
  );
  expect(await trainer.train()).toBe('finished');
  const weights = new Map<string, Float32Array>();
  for (const [name, v] of trainer.model.stateDict()) if (v.kind === 'tensor') weights.set(name, await v.tensor.read());
  const chosen = [...registry(ctx.gpu).chosen.values()];
  trainer.dispose();
  return { losses, weights, chosen };
}

describe('training with tuned conv kernels', () => {
  const getCtx = useContext();

  it('a replayed step with tuned kernels equals its eager run, bit for bit', async () => {
    const ctx = getCtx();
    const eager = await run(ctx, false);
    ctx.dispose();
    const replayed = await run(ctx, true);
    ctx.dispose();
    // Every conv shape of the step was tuned, and the tuned (non-default) config was chosen.
    expect(replayed.chosen.length).toBeGreaterThan(5);
    expect(replayed.chosen.every((c) => c.rb === 8)).toBe(true);
    expect(replayed.losses).toEqual(eager.losses);
    expect(replayed.losses.every(Number.isFinite)).toBe(true);
    for (const [name, w] of eager.weights) expect(replayed.weights.get(name), name).toEqual(w);
    resetConvTuning(ctx);
    // Tuning plus two runs of a step: 76 s alone, past the 120 s default beside other test files.
  }, 300_000);
});
