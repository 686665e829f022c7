/**
 * `webspark pretrain --resume FILE` continues the run the file was written by: with no other
 * option, its batch size, steps, schedule, seed and checkpoint interval are the file's (a run
 * of 3 steps at batch 2, checkpointed at step 2 and resumed with only `--resume` and `--out`,
 * runs step 2 alone, with the loss and lr of the uninterrupted run's step 2, bit for bit); an
 * option given on the command line still wins (`--steps 4` runs steps 2 and 3).
 * The tiny model in f32 on the bundled shard, in this process (as test/faults/config.test.ts).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/cli/args.ts';
import { command, pretrain } from '../../src/cli/pretrain.ts';

interface Line {
  step: number;
  loss: number;
  lr: number;
}

const root = mkdtempSync(join(tmpdir(), 'webspark-resume-'));
const run = (argv: string[]) => pretrain(parseOptions(command.options, ['--quiet', '--precision', 'f32', ...argv], { helpHint: 'help' }));
const metrics = (dir: string): Line[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

describe('pretrain --resume', () => {
  it("takes the run's batch size, steps and schedule from the file; an option given still wins", async () => {
    const first = join(root, 'first');
    await expect(run(['--model', 'tiny', '--steps', '3', '--batch-size', '2', '--checkpoint-every', '2', '--preview-every', '0', '--seed', '5', '--base-lr', '6', '--out', first])).resolves.toBe(0);
    const whole = metrics(first);
    expect(whole.map((m) => m.step)).toEqual([0, 1, 2]);
    const checkpoint = join(first, 'checkpoint-000000002.safetensors');

    const resumed = join(root, 'resumed');
    await expect(run(['--resume', checkpoint, '--out', resumed])).resolves.toBe(0);
    const again = metrics(resumed);
    expect(again.map((m) => m.step)).toEqual([2]);
    expect(again[0]!.lr).toBe(whole[2]!.lr);
    expect(again[0]!.loss).toBe(whole[2]!.loss);

    const longer = join(root, 'longer');
    await expect(run(['--resume', checkpoint, '--steps', '4', '--out', longer])).resolves.toBe(0);
    expect(metrics(longer).map((m) => m.step)).toEqual([2, 3]);
  }, 240_000);
});
