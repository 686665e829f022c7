/** The lr / weight-decay schedules and the visible-patch count against the fixture script's values (official formulas). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lrAt, peakLr, wdAt } from '../../src/optim/schedule.ts';
import { roundHalfEven } from '../../src/util/rng.ts';
import { expectClose } from '../helpers/check.ts';

interface Case {
  name: string;
  base_lr: number;
  batch_size: number;
  peak_lr: number;
  wd: number;
  wd_end: number;
  warmup_iters: number;
  total_iters: number;
  iterations: number[];
  lr: number[];
  weight_decay: number[];
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/model/schedule.json', import.meta.url), 'utf8')) as {
  cases: Case[];
  len_keep: { h: number; w: number; mask_ratio: number; len_keep: number }[];
};

describe('schedules', () => {
  for (const c of fixture.cases) {
    it(`lr and weight decay per iteration: ${c.name}`, () => {
      const cfg = { baseLr: c.base_lr, batchSize: c.batch_size, warmupIters: c.warmup_iters, totalIters: c.total_iters, wd: c.wd, wdEnd: c.wd_end };
      expect(peakLr(c.base_lr, c.batch_size)).toBeCloseTo(c.peak_lr, 15);
      // Both sides are float64 evaluations of the same formula: only rounding differs.
      expectClose(c.iterations.map((it) => lrAt(cfg, it)), c.lr, { atol: 0, rtol: 1e-12 }, 'lr');
      expectClose(c.iterations.map((it) => wdAt(cfg, it)), c.weight_decay, { atol: 0, rtol: 1e-12 }, 'wd');
    });
  }

  it("visible patches per image use Python's round (halves to even)", () => {
    for (const k of fixture.len_keep) {
      expect(roundHalfEven(k.h * k.w * (1 - k.mask_ratio)), `${k.h}x${k.w} at ${k.mask_ratio}`).toBe(k.len_keep);
    }
  });
});
