/**
 * The app's tuning options (src/worker/tune-host.ts) on a real trainer in Node (the tiny
 * model, SwiftShader), with an in-memory TuneStore in place of IndexedDB:
 * - progress events 0..N and the start / outcome lines; `maxShapes` tunes only the largest
 *   conv shapes (multiply-adds) of the run's step and the rest keep the default kernels; a
 *   larger conv another model ran on the same Gpu before (the app's demo does) is not tuned;
 * - a second "page" (the tuning registry reset, the same store) takes the cached choices
 *   without timing them, and a larger `maxShapes` times only the shapes not yet cached;
 * - a store that cannot be written (a full disk / quota) makes the tuner throw: the run is
 *   not lost, the failure is a notice and training finishes with finite losses.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resetConvTuning, type TuneStore } from '../../src/ops/autotune.ts';
import { conv2d } from '../../src/ops/conv2d.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { registry } from '../../src/ops/conv-tuning.ts';
import type { ConvConfig } from '../../src/ops/conv-plan.ts';
import type { ConvGeometry } from '../../src/ops/conv-plan.ts';
import type { Context } from '../../src/tensor/context.ts';
import { appTuneOptions } from '../../src/worker/tune-host.ts';
import type { HostEvent, RunTuning } from '../../src/worker/protocol.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from './tiny-run.ts';

class MemoryStore implements TuneStore {
  data = new Map<string, Record<string, ConvConfig>>();
  failSave = false;
  /** The conv shapes waiting to be tuned when the tuner started (it loads the store first). */
  seenAtLoad = new Map<string, { g: ConvGeometry }>();
  constructor(private ctx: () => Context) {}
  async load(adapter: string) {
    this.seenAtLoad = new Map(registry(this.ctx().gpu).seen);
    return { ...(this.data.get(adapter) ?? {}) };
  }
  async save(adapter: string, entries: Record<string, ConvConfig>) {
    if (this.failSave) throw new Error('QuotaExceededError: the quota has been exceeded');
    this.data.set(adapter, { ...(this.data.get(adapter) ?? {}), ...entries });
  }
}

async function run(ctx: Context, tuning: RunTuning, store: TuneStore) {
  const events: HostEvent[] = [];
  const losses: number[] = [];
  const emit = (e: HostEvent) => void events.push(e);
  const { trainer } = await tinyTrainer(
    ctx,
    { ...tinyConfig(2), maxInFlight: 0 },
    mkdtempSync(join(tmpdir(), 'webspark-tune-host-')),
    { metrics: (m) => void losses.push(m.loss), notice: (message) => emit({ type: 'notice', message }) },
    { autotune: appTuneOptions(tuning, emit, store) ?? false },
  );
  const end = await trainer.train();
  trainer.dispose();
  ctx.dispose();
  const notices = events.flatMap((e) => (e.type === 'notice' ? [e.message] : []));
  const progress = events.flatMap((e) => (e.type === 'tuning' ? [[e.done, e.total]] : []));
  return { end, losses, notices, progress };
}

/** Another model's conv on the same Gpu: dense 3x3, 16 -> 40 channels at 64 x 64 (more multiply-adds than any of the tiny step's). */
function foreignConv(ctx: Context): void {
  ctx.tidy(() => {
    const layout = SiteLayout.dense(1, 64, 64);
    const x = ctx.fromArray(new Float32Array(layout.rows * 16).fill(0.5), [layout.rows, 16], layout);
    const w = ctx.parameter('foreign w', [40, 16, 3, 3], new Float32Array(40 * 16 * 9).fill(0.01));
    conv2d(x, w, null, { padding: 1 });
  });
}

const macsOf = (g: ConvGeometry) => (g.outRows * g.cout * g.kh * g.kw * g.cin) / g.groups;

describe('app tuning options on a trainer', () => {
  const getCtx = useContext();

  it('tunes the largest shapes with progress and outcome, reuses the cache untimed, and survives a store that cannot be written', async () => {
    const ctx = getCtx();
    const store = new MemoryStore(getCtx);
    resetConvTuning(ctx);

    // Off: no tuning at all.
    expect(appTuneOptions({ autotune: false, maxShapes: 0 }, () => {}, store)).toBeUndefined();

    // The app's demo reconstructs on the training device: its shapes are the Gpu's, not the run's.
    foreignConv(ctx);
    const foreign = new Map(registry(ctx.gpu).seen);
    expect(foreign.size).toBe(1);

    const first = await run(ctx, { autotune: true, maxShapes: 1 }, store);
    expect(first.end).toBe('finished');
    expect(first.losses.every(Number.isFinite)).toBe(true);
    expect(first.progress).toEqual([[0, 1], [1, 1]]);
    expect(first.notices).toContain('tuning conv kernels: 0/1 shapes (the 1 largest)');
    const done1 = first.notices.find((n) => n.startsWith('kernel tuning done'));
    const stored = Object.keys([...store.data.values()][0]!);
    expect(stored).toHaveLength(1);
    // The one with the most multiply-adds among every shape the step used (as the tuner saw
    // them); the foreign conv, larger, is neither tuned nor counted.
    const macs = new Map([...store.seenAtLoad].filter(([k]) => !foreign.has(k)).map(([k, { g }]) => [k, macsOf(g)]));
    expect(macs.size).toBeGreaterThan(10);
    expect(macsOf([...foreign.values()][0]!.g)).toBeGreaterThan(Math.max(...macs.values()));
    expect(macs.get(stored[0]!)).toBe(Math.max(...macs.values()));
    expect(done1).toMatch(new RegExp(`: 1 conv shapes \\(1 timed, 0 from this browser's cache .*\\); \\d+ candidates rejected by the numerical check; [01] shapes use a non-default kernel configuration; ${macs.size - 1} smaller shapes keep the default kernels$`));
    // A tie (a conv's fwd and dw passes have the same multiply-adds) goes to the key that sorts first.
    const largest = [...macs].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
    expect(stored).toEqual([largest[0]![0]]);
    // The others stay untuned (default kernels), the foreign one among them.
    expect(registry(ctx.gpu).seen.size).toBe(macs.size - 1 + foreign.size);
    expect([...foreign.keys()].every((k) => registry(ctx.gpu).seen.has(k))).toBe(true);

    // A new page: nothing tuned in memory, the same store. Two shapes: the cached one is
    // re-checked, not timed; the second is timed, and saving it fails (quota): the run goes on.
    resetConvTuning(ctx);
    store.failSave = true;
    const second = await run(ctx, { autotune: true, maxShapes: 2 }, store);
    expect(second.end).toBe('finished');
    expect(second.losses.every(Number.isFinite)).toBe(true);
    expect(second.progress.at(-1)).toEqual([2, 2]);
    expect(second.notices.find((n) => n.startsWith('kernel tuning done'))).toMatch(/: 2 conv shapes \(1 timed, 1 from this browser's cache/);
    expect(second.notices.some((n) => /^kernel tuning failed \(QuotaExceededError.*\); training goes on/.test(n))).toBe(true);
    expect(second.losses).toHaveLength(2);
    resetConvTuning(ctx);
    // Two tiny runs with tuning (pipeline compiles dominate): 47-88 s at load 7-9 on 2 cores.
  }, 300_000);
});
