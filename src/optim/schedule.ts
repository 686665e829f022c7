/**
 * SparK's per-iteration schedules (official utils/lr_control.py):
 * - lr: linear warm-up from 0.005·peak to peak over `warmupIters`, then a cosine from peak
 *   down to 0.001·peak at the last iteration;
 * - weight decay: a cosine that RISES from `wd` (0.04) to `wdEnd` (0.2) over the whole run.
 * peak = baseLr · batch / 256.
 */
import { roundHalfEven } from '../util/rng.ts';

export interface ScheduleConfig {
  baseLr: number;
  batchSize: number;
  warmupIters: number;
  totalIters: number;
  wd: number;
  wdEnd: number;
}

export const OFFICIAL_SCHEDULE = { baseLr: 2e-4, wd: 0.04, wdEnd: 0.2, warmupEpochs: 40, epochs: 1600 } as const;

export function peakLr(baseLr: number, batchSize: number): number {
  return (baseLr * batchSize) / 256;
}

export function lrAt(c: ScheduleConfig, it: number): number {
  const peak = peakLr(c.baseLr, c.batchSize);
  const wp = roundHalfEven(c.warmupIters);
  if (it < wp) return 0.005 * peak + 0.995 * peak * (it / wp);
  const span = c.totalIters - 1 - wp;
  const ratio = span > 0 ? (it - wp) / span : 1;
  return 0.001 * peak + 0.999 * peak * (0.5 + 0.5 * Math.cos(Math.PI * ratio));
}

export function wdAt(c: ScheduleConfig, it: number): number {
  const ratio = c.totalIters > 1 ? it / (c.totalIters - 1) : 1;
  return c.wdEnd + (c.wd - c.wdEnd) * (0.5 + 0.5 * Math.cos(Math.PI * ratio));
}
