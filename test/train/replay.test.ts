/**
 * The training step is recorded once and replayed (src/gpu/recording.ts, Trainer.record).
 * A replayed run must be the run: same losses, weights, optimizer state and BN statistics,
 * bit for bit, as recording every step anew, with new masks, drop-path draws and scheduled lr
 * on every step. And a replayed step runs no model code, makes no pipelines and bind groups,
 * and costs one queue submit (its report read rides on the same submit).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Context } from '../../src/tensor/context.ts';
import type { StepMetrics } from '../../src/train/trainer.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';
import { needF16 } from '../helpers/f16.ts';

// Step 0 and step 1 are recorded (step 0 once), 2 and 3 replay step 1's recording: two
// replays, so state carried from one replay to the next is exercised too.
const STEPS = 4;

async function runSteps(ctx: Context, replay: boolean) {
  const metrics: StepMetrics[] = [];
  const submitsAfterStep: number[] = [];
  const pipelinesAfterStep: number[] = [];
  const dispatchesAfterStep: number[] = [];
  const { trainer } = await tinyTrainer(
    ctx,
    // Warm-up over the run so the lr differs on every step; drop path on so draws matter.
    // maxInFlight 0: each step's report arrives before the next step is recorded, so the
    // counters read in the metrics callback belong to that step alone.
    { ...tinyConfig(STEPS), warmupSteps: STEPS, dropPathRate: 0.2, batchSize: 2, maxInFlight: 0 },
    mkdtempSync(join(tmpdir(), `webspark-replay-${replay}-`)),
    {
      metrics: (m) => {
        metrics.push(m);
        submitsAfterStep.push(ctx.gpu.stats.submits);
        pipelinesAfterStep.push(ctx.gpu.stats.pipelines);
        dispatchesAfterStep.push(ctx.gpu.stats.dispatches);
      },
    },
    { replay },
  );
  let forwards = 0;
  const forward = trainer.model.forward.bind(trainer.model);
  trainer.model.forward = (...args) => {
    forwards++;
    return forward(...args);
  };
  const before = { ...ctx.gpu.stats };
  expect(await trainer.train()).toBe('finished');
  const weights = new Map<string, Float32Array>();
  // Parameters and BN running statistics under their state-dict keys, then optimizer state.
  for (const [name, v] of trainer.model.stateDict()) weights.set(name, v.kind === 'tensor' ? await v.tensor.read() : Float32Array.of(v.get()));
  for (const [name, t] of trainer.optimizer.stateTensors()) weights.set(`opt:${name}`, await t.read());
  const recorded = trainer.recordedStep;
  trainer.dispose();
  return { metrics, weights, forwards, recorded, before, after: { ...ctx.gpu.stats }, submitsAfterStep, pipelinesAfterStep, dispatchesAfterStep };
}

describe('recorded and replayed training step', () => {
  const getCtx = useContext();

  it(`${STEPS} steps recorded and replayed equal ${STEPS} steps run eagerly, bit for bit`, async () => {
    const ctx = getCtx();
    const fresh = await runSteps(ctx, false);
    ctx.dispose();
    const replayed = await runSteps(ctx, true);
    ctx.dispose();

    expect(replayed.metrics.map((m) => m.loss)).toEqual(fresh.metrics.map((m) => m.loss));
    expect(replayed.metrics.map((m) => m.gradNorm)).toEqual(fresh.metrics.map((m) => m.gradNorm));
    // The lr really changed from step to step (a stale replayed lr would still match above only by luck).
    expect(new Set(replayed.metrics.map((m) => m.lr)).size).toBe(STEPS);
    expect([...replayed.weights.keys()]).toEqual([...fresh.weights.keys()]);
    for (const [name, w] of fresh.weights) {
      expect(replayed.weights.get(name), name).toEqual(w);
    }
    // Step 0 (which makes the gradient buffers) and step 1 are recorded, steps 2.. are replays.
    expect(fresh.forwards).toBe(STEPS);
    expect(replayed.forwards).toBe(2);
    expect(replayed.recorded!.dispatches).toBeGreaterThan(50);
    // Liveness-assigned buffers: the step holds close to its busiest command's live bytes.
    // Buffers are shared whole (no offsets), so packing is coarser than that byte-level bound:
    // 1.31x on this model when measured; 1.5x leaves room for that, not for scope-long lifetimes
    // (the eager pool held 2.8x the live peak on the same model).
    expect(replayed.recorded!.bytes).toBeLessThanOrEqual(replayed.recorded!.livePeakBytes * 1.5);
  }, 300_000);

  it('a replayed step is one submit and makes no pipelines', async () => {
    const ctx = getCtx();
    const run = await runSteps(ctx, true);
    ctx.dispose();
    // Submits between consecutive steps' reports, once replaying (steps 2..): the step and its
    // report read go out together. (Checkpoints and previews are off in this config.)
    const perStep = run.submitsAfterStep.slice(2).map((s, i) => s - run.submitsAfterStep[i + 1]!);
    expect(perStep.length).toBe(STEPS - 2);
    for (const n of perStep) expect(n).toBe(1);
    expect(new Set(run.pipelinesAfterStep.slice(1)).size).toBe(1);
    // A replay encodes exactly the recorded dispatches, plus the batch's flip+normalise.
    const dispatches = run.dispatchesAfterStep.slice(2).map((s, i) => s - run.dispatchesAfterStep[i + 1]!);
    for (const n of dispatches) expect(n - run.recorded!.dispatches).toBeLessThanOrEqual(2);
  }, 300_000);

  it(`with f16 activations: ${STEPS} steps recorded and replayed equal ${STEPS} eager steps, bit for bit`, async (t) => {
    const base = getCtx();
    needF16(t, base);
    const ctx = new Context(base.gpu, { precision: 'f16' });
    const fresh = await runSteps(ctx, false);
    ctx.dispose();
    const replayed = await runSteps(ctx, true);
    ctx.dispose();
    for (const m of fresh.metrics) expect(Number.isFinite(m.loss)).toBe(true);
    expect(replayed.metrics.map((m) => m.loss)).toEqual(fresh.metrics.map((m) => m.loss));
    expect(replayed.metrics.map((m) => m.gradNorm)).toEqual(fresh.metrics.map((m) => m.gradNorm));
    for (const [name, w] of fresh.weights) expect(replayed.weights.get(name), name).toEqual(w);
    expect(replayed.forwards).toBe(2);
  }, 300_000);
});
