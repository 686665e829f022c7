/**
 * Trainer.planStep (and `bench train --memory-only` through bench/train-memory.ts): the memory
 * of a step found by recording it without running it equals what the trained run's kept
 * recording holds, leaves the weights alone, and in f16 the step's own buffers shrink towards
 * half once activations outweigh the parameter-sized scratch.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Context } from '../../src/tensor/context.ts';
import { fixedBatch } from '../../bench/train.ts';
import { planTrainMemory } from '../../bench/train-memory.ts';
import { useContext } from '../helpers/gpu.ts';
import { needF16 } from '../helpers/f16.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'webspark-plan-'));

describe('planning a step without running it', () => {
  const getCtx = useContext();

  it("gives the bytes the trained run's recorded step holds, and changes no weight", async () => {
    const ctx = getCtx();
    const config = { ...tinyConfig(3), batchSize: 2, dropPathRate: 0 };
    const trained = await tinyTrainer(ctx, config, tmp());
    expect(await trained.trainer.train()).toBe('finished');
    const kept = trained.trainer.recordedStep!;
    trained.trainer.dispose();

    const planner = await tinyTrainer(ctx, config, tmp());
    const before = await planner.trainer.model.parameters()[0]!.read();
    const stats = { ...ctx.gpu.stats };
    const planned = planner.trainer.planStep(fixedBatch(config.batchSize, config.inputSize));
    expect(planned).toEqual({ bytes: kept.bytes, livePeakBytes: kept.livePeakBytes });
    // One dispatch: the batch's conversion into the input tensor (batchToTensor). The two
    // recorded steps (thousands of dispatches when run) ran nothing.
    expect(ctx.gpu.stats.dispatches).toBe(stats.dispatches + 1);
    expect(kept.dispatches).toBeGreaterThan(100);
    expect(await planner.trainer.model.parameters()[0]!.read()).toEqual(before);
    // The planner can still train afterwards.
    expect(await planner.trainer.train()).toBe('finished');
    planner.trainer.dispose();
  });

  it('f16 activation memory is at most 0.55x of f32 where activations dominate (ResNet-18 and its decoder, 224 px, batch 8)', async (t) => {
    const ctx = getCtx();
    needF16(t, ctx);
    const at = { model: 'resnet18', inputSize: 224, batch: 8 };
    const f32 = await planTrainMemory(new Context(ctx.gpu, { precision: 'f32' }), at);
    const f16 = await planTrainMemory(new Context(ctx.gpu, { precision: 'f16' }), at);
    expect(f32.activationBytes).toBeGreaterThan(0);
    expect(f16.activationBytes / f32.activationBytes).toBeLessThanOrEqual(0.55);
    expect(f16.peakBytes).toBeLessThan(f32.peakBytes);
  });
});
