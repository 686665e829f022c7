/**
 * Watchdog-safe replays (src/gpu/replay-chunks.ts): a recorded training step submitted in
 * chunks under a GPU-time budget computes exactly what the unchunked step computes, and costs
 * the submits its plan says: one per chunk, one in all when the step fits the budget. On the
 * CPU adapter with the tiny trainer of test/train/tiny-run.ts; timestamps and the wall-clock
 * fallback are both exercised.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkEnds, segmentEndsOf, MAX_SEGMENTS } from '../../src/gpu/replay-chunks.ts';
import { Recording } from '../../src/gpu/recording.ts';
import type { Context } from '../../src/tensor/context.ts';
import { useContext } from '../helpers/gpu.ts';
import { tinyConfig, tinyTrainer } from '../train/tiny-run.ts';

const STEPS = 5;

interface ChunkedRun {
  weights: Map<string, Float32Array>;
  losses: number[];
  /** Submits between consecutive steps' reports (step i: index i - 1). */
  submitsPerStep: number[];
  /** Chunks the plan gave each step's replay, read when the step was encoded. */
  chunksPerStep: number[];
  segments: number;
}

async function run(ctx: Context, budgetMs: number | null, wall = false): Promise<ChunkedRun> {
  const gpu = ctx.gpu;
  gpu.replayChunks.budgetMs = budgetMs;
  gpu.replayChunks.forceWallClock = wall;
  const submits: number[] = [];
  const losses: number[] = [];
  const { trainer } = await tinyTrainer(
    ctx,
    // maxInFlight 0: each step's report arrives before the next step is encoded, so the
    // submits counted between two reports are one step's, and the profile is back in time.
    { ...tinyConfig(STEPS), maxInFlight: 0 },
    mkdtempSync(join(tmpdir(), 'webspark-chunks-')),
    {
      metrics: (m) => {
        losses.push(m.loss);
        submits.push(gpu.stats.submits);
      },
    },
  );
  // The plan each replay used: what chunksOf says right before the trainer replays.
  const chunksPerStep: number[] = [];
  const replay = gpu.replay.bind(gpu);
  gpu.replay = (rec: Recording) => {
    chunksPerStep.push(gpu.replayChunks.chunksOf(rec).length);
    replay(rec);
  };
  try {
    expect(await trainer.train()).toBe('finished');
  } finally {
    gpu.replay = replay;
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, v] of trainer.model.stateDict()) weights.set(name, v.kind === 'tensor' ? await v.tensor.read() : Float32Array.of(v.get()));
  for (const [name, t] of trainer.optimizer.stateTensors()) weights.set(`opt:${name}`, await t.read());
  const segments = gpu.replayChunks.lastPlan?.segmentEnds.length ?? 1;
  const measured = gpu.replayChunks.lastPlan?.segmentMs;
  if (budgetMs !== null && measured) {
    console.log(`budget ${budgetMs} ms, ${wall ? 'wall clock' : 'timestamps'}: ${segments} segments, step ${measured.reduce((x, y) => x + y, 0).toFixed(1)} ms measured, chunks per replayed step ${chunksPerStep.slice(2).join(' ')}`);
  }
  trainer.dispose();
  ctx.dispose();
  gpu.replayChunks.budgetMs = null;
  gpu.replayChunks.forceWallClock = false;
  return { weights, losses, submitsPerStep: submits.slice(1).map((s, i) => s - submits[i]!), chunksPerStep, segments };
}

describe('replays chunked under a GPU-time budget', () => {
  const getCtx = useContext();

  it('greedy chunks: each within the budget unless one segment alone is over it; no two neighbours fit together', () => {
    const ends = [3, 5, 9, 12, 20, 21];
    const ms = [0.2, 0.2, 0.7, 0.1, 0.1, 0.3];
    expect(chunkEnds(ends, ms, 0.5)).toEqual([5, 9, 21]);
    expect(chunkEnds(ends, ms, 10)).toEqual([21]);
    expect(chunkEnds(ends, ms, 0)).toEqual(ends);
    // Segments split the dispatches evenly and end right after a dispatch; the last is the end.
    const rec = new Recording();
    for (let i = 0; i < 600; i++) rec.commands.push(i % 3 === 2 ? { kind: 'host', run: () => {} } : ({ kind: 'dispatch' } as never));
    const seg = segmentEndsOf(rec);
    expect(seg.length).toBe(MAX_SEGMENTS);
    expect(seg.at(-1)).toBe(600);
    for (const e of seg.slice(0, -1)) expect(rec.commands[e - 1]!.kind).toBe('dispatch');
  });

  it('a step chunked under a tiny budget gives the unchunked weights bit for bit, one submit per chunk', async () => {
    const ctx = getCtx();
    const whole = await run(ctx, null);
    const tiny = await run(ctx, 1e-9);
    expect(tiny.losses).toEqual(whole.losses);
    expect([...tiny.weights.keys()]).toEqual([...whole.weights.keys()]);
    for (const [name, w] of whole.weights) expect(tiny.weights.get(name), name).toEqual(w);
    // Unchunked: one submit per replayed step (steps 2..). Every measured segment is over a
    // 1e-9 ms budget, so each is a chunk: a step costs as many submits as it has segments.
    for (const n of whole.submitsPerStep.slice(1)) expect(n).toBe(1);
    expect(tiny.segments).toBeGreaterThan(20);
    expect(tiny.chunksPerStep.slice(2)).toEqual(Array(STEPS - 2).fill(tiny.segments));
    for (const n of tiny.submitsPerStep.slice(1)) expect(n).toBe(tiny.segments);
  }, 600_000);

  it('a budget the step fits is one submit per step once measured; wall-clock timing plans the same way', async () => {
    const ctx = getCtx();
    const roomy = await run(ctx, 60_000);
    // Steps 0 and 1 are their recordings' first replays (measured segment by segment); the
    // later replays fit the budget: one chunk, one submit (the report read rides on it).
    expect(roomy.chunksPerStep.slice(2)).toEqual(Array(STEPS - 2).fill(1));
    for (const n of roomy.submitsPerStep.slice(1)) expect(n).toBe(1);
    const wall = await run(ctx, 1e-9, true);
    const chunks = wall.chunksPerStep.slice(2);
    // Wall-clock times resolve on the host's clock: two segments done within one tick of it
    // measure 0 ms and share a chunk, so the count is at most the segments, and it is what is submitted.
    for (let i = 0; i < chunks.length; i++) {
      expect(chunks[i]).toBeGreaterThan(1);
      expect(chunks[i]).toBeLessThanOrEqual(wall.segments);
      expect(wall.submitsPerStep[i + 1]).toBe(chunks[i]);
    }
    expect(wall.losses).toEqual(roomy.losses);
  }, 600_000);
});
