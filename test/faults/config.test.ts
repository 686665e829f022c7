/**
 * Bad configuration from the CLI: each bad value is refused before any GPU
 * or file work, with a message naming the option or field and the allowed range. The app goes
 * through the same `validateTrainConfig` in the worker (src/worker/trainer-worker.ts); the
 * direct calls below are what it sees.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/args.ts';
import { command, pretrain } from '../../src/cli/pretrain.ts';
import { ConfigError, validateTrainConfig } from '../../src/train/config.ts';
import { tinyConfig } from '../train/tiny-run.ts';

const out = join(mkdtempSync(join(tmpdir(), 'webspark-badcfg-')), 'run');

const cases: [string, string[], RegExp][] = [
  ['input size not a multiple of 32', ['--input-size', '100'], /^input size: must be a multiple of 32 and at least 32, got 100$/],
  ['input size too small', ['--input-size', '16'], /^--input-size must be an integer in \[32, 1024\], got '16'$/],
  ['batch 0', ['--batch-size', '0'], /^--batch-size must be an integer in \[1, 4096\], got '0'$/],
  ['negative lr', ['--base-lr', '-0.1'], /^--base-lr must be a number in \[0, Infinity\], got '-0.1'$/],
  ['NaN lr', ['--base-lr', 'NaN'], /^--base-lr must be a number in \[0, Infinity\], got 'NaN'$/],
  ['zero lr', ['--base-lr', '0'], /^base lr: must be a number above 0 whose peak lr \(base x batch\/256\) is under 10, got 0 \(peak 0\)$/],
  ['unknown model', ['--model', 'resnet7'], /^--model: unknown model 'resnet7' \(known: .*resnet18.*\)$/],
  ['mask ratio 1', ['--mask-ratio', '0.995'], /^--mask-ratio must be a number in \[0, 0.99\], got '0.995'$/],
  ['unknown precision', ['--precision', 'bf16'], /^--precision must be f32 or f16, got 'bf16'$/],
];

describe('bad configuration', () => {
  for (const [label, argv, message] of cases) {
    it(`CLI pretrain: ${label}`, async () => {
      const argvOf = ['--steps', '1', '--out', out, ...argv];
      await expect((async () => pretrain(parseOptions(command.options, argvOf, { helpHint: 'help' })))()).rejects.toThrow(message);
      expect(existsSync(out)).toBe(false); // refused before the run folder (or a GPU) was made
    });
  }

  it('the shared check (the worker uses it for the app) names the field and the range', () => {
    const bad: [Partial<ReturnType<typeof tinyConfig>>, string, RegExp][] = [
      [{ inputSize: 100 }, 'input size', /multiple of 32/],
      [{ batchSize: 0 }, 'batch size', /at least 1, got 0/],
      [{ baseLr: -1 }, 'base lr', /above 0 whose peak lr \(base x batch\/256\) is under 10, got -1/],
      [{ baseLr: NaN }, 'base lr', /above 0 whose peak lr .* got NaN/],
      // The bound is on the peak lr: base 2000 at batch 2 is a peak of 15.6.
      [{ baseLr: 2000, batchSize: 2 }, 'base lr', /peak lr \(base x batch\/256\) is under 10, got 2000 \(peak 15.625\)/],
      [{ model: 'vgg' }, 'model', /unknown model 'vgg' \(known: /],
      [{ precision: 'f64' as never }, 'precision', /must be f32 or f16, got 'f64'/],
    ];
    // The small-scale rule's base lr at batch 2 (12.8, peak 0.1) is accepted: the old bound on
    // the base lr itself rejected it.
    expect(() => validateTrainConfig({ ...tinyConfig(1), baseLr: 12.8, batchSize: 2 })).not.toThrow();
    for (const [patch, field, message] of bad) {
      let err: unknown = null;
      try {
        validateTrainConfig({ ...tinyConfig(1), ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
      expect((err as Error).message).toMatch(message);
    }
    expect(() => validateTrainConfig(tinyConfig(1))).not.toThrow();
  });
});
