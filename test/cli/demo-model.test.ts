/**
 * The shipped demo model on the command line: `reconstruct` without --checkpoint uses it and
 * `info` names it (file, model, input size, data, held-out loss); when the file is missing,
 * `reconstruct` says so and what to do, and `info` says it is missing. WEBSPARK_DEMO_MODEL
 * points both at a small stand-in (the narrow ResNet-18 fixture packed by the ship tool's own
 * code, with a card) or at a path that does not exist, so both cases run in every checkout.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { CARD_KEY, type DemoModelCard } from '../../src/models/demo-model.ts';
import { shippedTensors } from '../../tools/ship-demo-model.ts';
import { jpeg, tempDir } from '../data/helpers.ts';
import { makeRun } from '../helpers/demo-model.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));

function webspark(model: string, ...argv: string[]) {
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, WEBSPARK_DEMO_MODEL: model } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the shipped demo model on the command line', () => {
  const tmp = tempDir('demo-cli');
  afterAll(() => tmp.remove());
  const card: DemoModelCard = {
    title: 'SparK resnet18, 64 px, CPU stop-gap', model: 'resnet18', inputSize: 64, decoderWidth: 32, steps: 3, batchSize: 2,
    data: 'the train split of a test corpus', hardware: 'CPU stop-gap: a test', wallSeconds: 90, wallSource: 'test',
    heldOut: { mean: 0.8764, photos: 3, seeds: [0, 1], maskRatio: 0.6, inputSize: 64, perSeed: [0.8, 0.953] },
    checkpoint: 'checkpoint-000000003.safetensors', storage: 'float16 weights, float32 1-D tensors',
  };

  it('reconstruct uses it when no --checkpoint is given, and info names it', async () => {
    const { tensors, metadata } = shippedTensors(new Uint8Array(readFileSync(makeRun(join(tmp.path, 'run')))));
    const model = join(tmp.path, 'demo-model.safetensors');
    writeFileSync(model, writeSafetensors(tensors, { ...metadata, [CARD_KEY]: JSON.stringify(card) }));
    const photo = join(tmp.path, 'photo.jpg');
    writeFileSync(photo, await jpeg(80, 64, 1));
    const r = webspark(model, 'reconstruct', photo, '--json', '--out', join(tmp.path, 'grid.png'));
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ checkpoint: model, model: 'resnet18', inputSize: 64, images: 1 });
    expect(summary.loss).toBeGreaterThan(0);

    const info = webspark(model, 'info');
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toContain(`demo model: ${model}`);
    expect(info.stdout).toMatch(/SparK resnet18, 64 px, CPU stop-gap: resnet18, 64 px, decoder width 32, 3 steps at batch 2/);
    expect(info.stdout).toMatch(/trained on the train split of a test corpus/);
    expect(info.stdout).toMatch(/held-out loss 0\.876 \(official masked-patch loss, mask ratio 0\.6, 2 seeded masks per photo, 3 held-out photos at 64 px\)/);
    const json = JSON.parse(webspark(model, 'info', '--json').stdout);
    expect(json.demoModel).toMatchObject({ path: model, card: { title: card.title, heldOut: { mean: 0.8764 } } });
  });

  it('says the model is missing and what to do', async () => {
    const missing = join(tmp.path, 'nothing-here.safetensors');
    const photo = join(tmp.path, 'photo2.jpg');
    writeFileSync(photo, await jpeg(64, 64, 2));
    const r = webspark(missing, 'reconstruct', photo);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`no --checkpoint given and the shipped demo model ${missing} is missing: pass --checkpoint FILE`);
    expect(r.stderr).toContain('tools/ship-demo-model.ts CHECKPOINT');
    const info = webspark(missing, 'info');
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toContain(`demo model: missing (${missing})`);
    expect(JSON.parse(webspark(missing, 'info', '--json').stdout).demoModel).toEqual({ path: missing, bytes: null, card: null });
  });
});
