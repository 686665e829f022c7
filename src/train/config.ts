/**
 * Checks a training configuration before anything is built, with messages that name the field
 * and the allowed range (for the CLI and the UI alike).
 */
import { MODEL_NAMES } from '../models/zoo.ts';
import { visiblePatches } from '../models/spark.ts';
import type { TrainConfig } from './trainer.ts';
import { PRECISIONS } from '../tensor/precision.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new ConfigError(field, message);
}

const finite = (v: number) => typeof v === 'number' && Number.isFinite(v);
const int = (v: number) => finite(v) && Number.isInteger(v);

export function validateTrainConfig(c: TrainConfig): void {
  check(MODEL_NAMES.includes(c.model as never), 'model', `unknown model '${c.model}' (known: ${MODEL_NAMES.join(', ')})`);
  check(int(c.inputSize) && c.inputSize >= 32 && c.inputSize % 32 === 0, 'input size', `must be a multiple of 32 and at least 32, got ${c.inputSize}`);
  check(int(c.batchSize) && c.batchSize >= 1, 'batch size', `must be a whole number of at least 1, got ${c.batchSize}`);
  check(int(c.totalSteps) && c.totalSteps >= 1, 'steps', `must be a whole number of at least 1, got ${c.totalSteps}`);
  // The bound is on the peak lr (base x batch/256): the small-scale rule's base lr is 25.6 at batch 1.
  const peak = (c.baseLr * c.batchSize) / 256;
  check(finite(c.baseLr) && c.baseLr > 0 && peak < 10, 'base lr', `must be a number above 0 whose peak lr (base x batch/256) is under 10, got ${c.baseLr} (peak ${peak})`);
  check(finite(c.warmupSteps) && c.warmupSteps >= 0, 'warm-up', `must be at least 0, got ${c.warmupSteps}`);
  const ratio = c.maskRatio ?? 0.6;
  check(finite(ratio) && ratio > 0 && ratio < 1, 'mask ratio', `must be in (0, 1), got ${ratio}`);
  const fmap = c.inputSize / 32;
  const keep = visiblePatches(fmap, ratio);
  check(keep >= 1 && keep < fmap * fmap, 'mask ratio', `keeps ${keep} of ${fmap * fmap} patches at input ${c.inputSize}: at least one must be visible and one masked`);
  const width = c.decoderWidth ?? 768;
  check(int(width) && width >= 32, 'decoder width', `must be a whole number of at least 32 (it halves five times), got ${width}`);
  check(finite(c.wd) && c.wd >= 0 && finite(c.wdEnd) && c.wdEnd >= 0, 'weight decay', `must be at least 0, got ${c.wd} -> ${c.wdEnd}`);
  check(c.optimizer === 'lamb' || c.optimizer === 'adamw', 'optimizer', `must be lamb or adamw, got '${c.optimizer}'`);
  check(c.precision === undefined || PRECISIONS.includes(c.precision), 'precision', `must be ${PRECISIONS.join(' or ')}, got '${String(c.precision)}'`);
  check(int(c.seed) && c.seed >= 0, 'seed', `must be a whole number of at least 0, got ${c.seed}`);
}
