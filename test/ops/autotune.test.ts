/**
 * The conv auto-tune (src/ops/autotune.ts): bounded, cached, and it never uses a candidate
 * whose output is wrong. No timing is asserted: only how many samples were taken, and which
 * candidates were checked and chosen. The numerics of every candidate configuration against
 * the float64 reference are in conv2d.test.ts / conv-transpose.test.ts (`withConvConfig`).
 */
import { describe, expect, it } from 'vitest';
import { conv2d, convTranspose2d } from '../../src/ops/conv2d.ts';
import {
  resetConvTuning, tuneConvs, type KeyReport, type TuneStore,
} from '../../src/ops/autotune.ts';
import { registry } from '../../src/ops/conv-tuning.ts';
import type { ConvConfig } from '../../src/ops/conv-plan.ts';
import { MAX_CANDIDATES } from '../../src/ops/autotune-candidates.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import type { Context } from '../../src/tensor/context.ts';
import { useContext } from '../helpers/gpu.ts';
import { Rng, f32 } from '../helpers/random.ts';
import { patchMask } from '../helpers/masks.ts';

/** Runs a dense conv, a submanifold conv and a transposed conv forward + backward once, so their keys are seen. */
function runShapes(ctx: Context): void {
  const rng = new Rng(11);
  ctx.tidy(() => {
    const inL = SiteLayout.dense(1, 9, 11);
    const x = ctx.fromArray(f32(rng.array(inL.rows * 8)), [inL.rows, 8], inL);
    x.requiresGrad = true;
    const w = ctx.parameter('tune w', [12, 8, 3, 3], f32(rng.array(12 * 8 * 9)));
    const y = conv2d(x, w, null, { padding: 1 });
    ctx.backward(y, y);
    const sL = patchMask(rng, 2, 2, ['some', 'all']).layoutAt(8, 8);
    const xs = ctx.fromArray(f32(rng.array(sL.rows * 5)), [sL.rows, 5], sL);
    xs.requiresGrad = true;
    const ws = ctx.parameter('tune ws', [6, 5, 3, 3], f32(rng.array(6 * 5 * 9)));
    const ys = conv2d(xs, ws, null, { padding: 1 });
    ctx.backward(ys, ys);
    const xt = ctx.fromArray(f32(rng.array(2 * 5 * 4 * 8)), [40, 8], SiteLayout.dense(2, 5, 4));
    xt.requiresGrad = true;
    const wt = ctx.parameter('tune wt', [8, 6, 4, 4], f32(rng.array(8 * 6 * 16)));
    const yt = convTranspose2d(xt, wt, null, { stride: 2, padding: 1 });
    ctx.backward(yt, yt);
  });
}

/** Counts Gpu.timeOnGpu calls (each is one timed sample where the device has timestamps). */
function countTimings(ctx: Context): { count: () => number; restore: () => void } {
  const gpu = ctx.gpu;
  const original = gpu.timeOnGpu.bind(gpu);
  let n = 0;
  gpu.timeOnGpu = (record) => {
    n++;
    return original(record);
  };
  return { count: () => n, restore: () => void (gpu.timeOnGpu = original) };
}

const samples = (rs: KeyReport[]) => rs.flatMap((r) => r.candidates).reduce((s, c) => s + c.samples.length, 0);

describe('conv auto-tune', () => {
  const getCtx = useContext();

  it('checks every candidate of every seen key, times at most rounds x candidates, and installs the winners', async () => {
    const ctx = getCtx();
    resetConvTuning(ctx);
    runShapes(ctx);
    const keys = [...registry(ctx.gpu).seen.keys()];
    // conv fwd/dx/dw, sparse fwd/dx/dw, convT fwd (= a strided dx key) / dx (a strided fwd key) / dw
    expect(keys.length).toBe(9);
    const timings = countTimings(ctx);
    const reports = await tuneConvs(ctx, { rounds: 2 });
    timings.restore();
    expect(reports.map((r) => r.key).sort()).toEqual([...keys].sort());
    for (const r of reports) {
      expect(r.source).toBe('timed');
      expect(r.candidates.length).toBeGreaterThan(1);
      expect(r.candidates.length).toBeLessThanOrEqual(MAX_CANDIDATES);
      expect(r.candidates[0]!.label).toBe('default');
      for (const c of r.candidates) {
        expect(c.rejected, `${r.key} ${c.label}`).toBeNull();
        expect(c.samples.length).toBeLessThanOrEqual(2);
      }
      expect(registry(ctx.gpu).chosen.get(r.key)).toBe(r.config);
    }
    // Timestamps exist on SwiftShader through Dawn; each sample is one timed run.
    if (ctx.gpu.features.has('timestamp-query')) expect(timings.count()).toBe(samples(reports));
    ctx.dispose();
  });

  it('is bounded: never more than MAX_CANDIDATES or maxCandidates, and no sample after the budget', async () => {
    const ctx = getCtx();
    resetConvTuning(ctx);
    runShapes(ctx);
    // Ten configs offered, distinct whichever tile size the adapter defaults to (32x32 on a
    // software adapter, so tiles alone would not do): the bound cuts them to MAX_CANDIDATES.
    const many: ConvConfig[] = [{}, { rb: 8 }, { tm: 64 }, { tn: 64 }, { tm: 64, tn: 64 }, { rb: 8, tm: 64 }, { rb: 8, tn: 64 }, { rb: 8, tm: 64, tn: 64 }, { vec4: false }, { rb: 8, vec4: false }];
    const capped = await tuneConvs(ctx, { candidates: () => many, rounds: 1, budgetMs: 1e9 });
    for (const r of capped) expect(r.candidates.length).toBeLessThanOrEqual(MAX_CANDIDATES);
    expect(Math.max(...capped.map((r) => r.candidates.length))).toBe(MAX_CANDIDATES);

    resetConvTuning(ctx);
    runShapes(ctx);
    const two = await tuneConvs(ctx, { maxCandidates: 2, rounds: 3, budgetMs: 1e9 });
    for (const r of two) {
      expect(r.candidates.length).toBeLessThanOrEqual(2);
      for (const c of r.candidates) expect(c.samples.length).toBeLessThanOrEqual(3);
    }

    // A spent budget: candidates are still checked, none is timed, the default stays.
    resetConvTuning(ctx);
    runShapes(ctx);
    const timings = countTimings(ctx);
    const none = await tuneConvs(ctx, { budgetMs: 0 });
    timings.restore();
    expect(samples(none)).toBe(0);
    expect(timings.count()).toBe(0);
    for (const r of none) expect(r.winner).toBe(0);
    ctx.dispose();
  });

  it('caches: a second call times nothing; a stored choice is re-checked, not re-timed', async () => {
    const ctx = getCtx();
    resetConvTuning(ctx);
    runShapes(ctx);
    const saved = new Map<string, Record<string, ConvConfig>>();
    const store: TuneStore = {
      load: async (a) => ({ ...(saved.get(a) ?? {}) }),
      save: async (a, e) => void saved.set(a, { ...e }),
    };
    const first = await tuneConvs(ctx, { store, rounds: 1, choose: 'last' });
    expect(saved.size).toBe(1);
    const entries = [...saved.values()][0]!;
    expect(Object.keys(entries).sort()).toEqual(first.map((r) => r.key).sort());

    runShapes(ctx); // the same keys again: already chosen, nothing new seen
    const timings = countTimings(ctx);
    const again = await tuneConvs(ctx, { keys: first.map((r) => r.key), store });
    expect(again.every((r) => r.source === 'memory')).toBe(true);
    expect(timings.count()).toBe(0);

    // A fresh start on the same adapter (as a new process would be): loaded, checked, not timed.
    resetConvTuning(ctx);
    runShapes(ctx);
    const loaded = await tuneConvs(ctx, { store });
    timings.restore();
    expect(timings.count()).toBe(0);
    for (const r of loaded) {
      expect(r.source).toBe('store');
      expect(r.config).toEqual(entries[r.key]);
      for (const c of r.candidates) expect(c.rejected).toBeNull();
    }
    ctx.dispose();
  });

  it('rejects a candidate whose output is wrong, reports it, and never uses it', async () => {
    const ctx = getCtx();
    resetConvTuning(ctx);
    runShapes(ctx);
    const log: string[] = [];
    // Wrong output for every 8x4-block candidate (the test hook adds 1 to one value).
    const corrupt = (_key: string, c: ConvConfig) => c.rb === 8;
    // choose 'last' would pick the last candidate, an rb=8 one in every list: it must not.
    const reports = await tuneConvs(ctx, { corrupt, choose: 'last', rounds: 1, log: (l) => log.push(l) });
    let rejected = 0;
    for (const r of reports) {
      for (const c of r.candidates) {
        if (c.config.rb === 8) {
          expect(c.rejected).toMatch(/real shape vs the default/);
          expect(c.samples).toEqual([]);
          rejected++;
        } else {
          expect(c.rejected).toBeNull();
        }
      }
      expect(r.config.rb).toBeUndefined();
      expect(registry(ctx.gpu).chosen.get(r.key)?.rb).toBeUndefined();
    }
    expect(rejected).toBeGreaterThan(0);
    expect(log.filter((l) => l.includes('rejected')).length).toBe(rejected);

    // A stored choice that now fails its check is tuned again, not used.
    resetConvTuning(ctx);
    runShapes(ctx);
    const keys = reports.map((r) => r.key);
    const store: TuneStore = {
      load: async () => Object.fromEntries(keys.map((k) => [k, { rb: 8 }])),
      save: async () => {},
    };
    const again = await tuneConvs(ctx, { store, corrupt, rounds: 1 });
    for (const r of again) {
      expect(r.source).toBe('timed');
      expect(r.config.rb).toBeUndefined();
    }

    // A stored entry that is not a configuration (another version's, or hand-edited) is never
    // passed on as override constants: refused, reported, tuned again.
    resetConvTuning(ctx);
    runShapes(ctx);
    const bad: TuneStore = {
      load: async () => Object.fromEntries(keys.map((k) => [k, { rb: 16, tm: 32 } as unknown as ConvConfig])),
      save: async () => {},
    };
    log.length = 0;
    const fresh = await tuneConvs(ctx, { store: bad, rounds: 1, budgetMs: 0, log: (l) => log.push(l) });
    for (const r of fresh) {
      expect(r.source).toBe('timed');
      expect(r.config.rb).not.toBe(16);
    }
    expect(log.filter((l) => l.includes('is not a kernel configuration')).length).toBe(keys.length);
    ctx.dispose();
  });
});
