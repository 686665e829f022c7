/**
 * f16's range exceeded: gradients that stay non-finite at a loss scale of 1 or less while the
 * loss is finite pause the run with a message that names f16 (SkipWatch), and a Supervisor
 * whose platform allows it (`fallbackToF32`) trains on in f32 from the checkpoint written at
 * the pause. An overflow is planted (test/helpers/poison.ts) with the loss scale starting at 1.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Context } from '../../src/tensor/context.ts';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { Supervisor } from '../../src/train/supervisor.ts';
import type { TrainConfig } from '../../src/train/trainer.ts';
import { useContext } from '../helpers/gpu.ts';
import { needF16 } from '../helpers/f16.ts';
import { poison } from '../helpers/poison.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

// maxInFlight 0: each step's report is handled before the next is recorded, so the pause comes right after step 4.
const config = (precision: 'f16' | 'f32'): TrainConfig => ({ ...tinyConfig(8), precision, maxInFlight: 0, maxConsecutiveSkips: 3, lossScale: { initScale: 1 } });

describe("f16's range exceeded", () => {
  const getCtx = useContext();

  async function supervised(allowFallback: boolean) {
    const gpu = getCtx().gpu;
    const out = mkdtempSync(join(tmpdir(), 'webspark-f16-range-'));
    const notices: string[] = [];
    const built: string[] = [];
    let precision: 'f16' | 'f32' = 'f16';
    let store: Awaited<ReturnType<typeof tinyTrainer>>['store'] | null = null;
    const supervisor = new Supervisor({
      build: async () => {
        const ctx = new Context(gpu, { precision });
        const t = await tinyTrainer(ctx, config(precision), out, { notice: (m) => void notices.push(m) });
        store = t.store;
        // Only the f16 trainer's steps 2, 3, 4 overflow (as activations past 65504 would).
        if (precision === 'f16') poison(t.trainer, (s) => s >= 2 && s <= 4, Infinity);
        built.push(precision);
        return { trainer: t.trainer, dispose: () => ctx.dispose() };
      },
      latest: async () => {
        const c = store!.latest();
        return c ? readWeightFile(new Uint8Array(readFileSync(c.path)), c.path) : null;
      },
      notice: (m) => void notices.push(m),
      fallbackToF32: () => {
        if (!allowFallback) return false;
        precision = 'f32';
        return true;
      },
    });
    try {
      const result = await supervisor.run();
      return { result, notices, built, trainer: supervisor.trainer! };
    } finally {
      supervisor.dispose();
    }
  }

  it('pauses with a message naming f16 when no fallback is allowed', async (t) => {
    needF16(t, getCtx());
    const { result, notices, built, trainer } = await supervised(false);
    expect(result.state).toBe('paused');
    expect(result.step).toBe(5);
    expect(built).toEqual(['f16']);
    expect(trainer.pauseCause).toBe('f16-range');
    expect(notices.join('\n')).toMatch(/3 steps in a row had non-finite gradients at loss scale 0.25 with a finite loss: a value exceeds f16's range \(65504\)/);
  }, 300_000);

  it('goes on in f32 from the checkpoint written at the pause, to the end of the run', async (t) => {
    needF16(t, getCtx());
    const { result, notices, built, trainer } = await supervised(true);
    expect(result.state).toBe('finished');
    expect(result.step).toBe(8);
    expect(built).toEqual(['f16', 'f32']);
    expect(trainer.ctx.precision).toBe('f32');
    const text = notices.join('\n');
    expect(text).toMatch(/resumed from the checkpoint at step 5/);
    expect(text).toMatch(/f16's range was exceeded at step 5: training goes on in f32 from the checkpoint at step 5/);
  }, 300_000);
});
