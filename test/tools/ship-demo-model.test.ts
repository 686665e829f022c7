/**
 * tools/ship-demo-model.ts end to end on a small checkpoint (the narrow ResNet-18 fixture at
 * 64 px) and a corpus of 3 held-out photos: the shipped file holds the model weights only
 * (float16 for weights, float32 for 1-D tensors, within float16 rounding of the checkpoint)
 * with its config and card; the card's held-out loss equals the mean of
 * `webspark reconstruct --mask-ratio 0.6 --seed S --json` over the seeds on the shipped file;
 * the photos, figures and the doc section are written; a file over the size cap is refused
 * and nothing is written.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors, toFloat32 } from '../../src/io/safetensors.ts';
import { cardFromMetadata, DEMO_MODEL_PATH, DEMO_PHOTOS_LIST } from '../../src/models/demo-model.ts';
import { heldOutInDoc } from '../../tools/demo-model-figures.ts';
import { tempDir } from '../data/helpers.ts';
import { makeCorpus, makeRun } from '../helpers/demo-model.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(ROOT, 'src/cli/webspark.mjs');
const tool = join(ROOT, 'tools/ship-demo-model.ts');

describe('tools/ship-demo-model.ts', () => {
  const tmp = tempDir('ship');
  afterAll(() => tmp.remove());

  it('ships the weights with a card whose held-out loss is what `webspark reconstruct` measures, and the figures', async () => {
    const checkpoint = makeRun(join(tmp.path, 'run'));
    const corpus = join(tmp.path, 'corpus');
    const keys = await makeCorpus(corpus, 3);
    const pub = join(tmp.path, 'public');
    const docs = join(tmp.path, 'docs');
    mkdirSync(docs, { recursive: true });
    copyFileSync(join(ROOT, 'docs/demo-model.md'), join(docs, 'demo-model.md'));
    execFileSync(process.execPath, ['--import', 'tsx', tool, checkpoint, '--corpus', corpus, '--public', pub, '--docs', docs, '--seeds', '2', '--grid-photos', '2'], { encoding: 'utf8', cwd: ROOT });

    const shipped = readSafetensors(new Uint8Array(readFileSync(join(pub, DEMO_MODEL_PATH))));
    const source = readSafetensors(new Uint8Array(readFileSync(checkpoint)));
    expect([...shipped.tensors.keys()].some((k) => k.startsWith('optimizer.'))).toBe(false);
    expect(shipped.tensors.size).toBe(source.tensors.size - 1);
    for (const [name, e] of shipped.tensors) {
      const from = source.tensors.get(name)!;
      if (from.dtype !== 'F32') expect(e.dtype, name).toBe(from.dtype);
      else expect(e.dtype, name).toBe(e.shape.length >= 2 ? 'F16' : 'F32');
      // float16 keeps 11 significant bits: round to nearest is within 2^-11 relative (2^-24 absolute near 0).
      const a = toFloat32(e);
      const b = toFloat32(from);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), name).toBeLessThanOrEqual(Math.abs(b[i]!) * 2 ** -11 + 2 ** -24);
    }
    expect(JSON.parse(shipped.metadata['webspark.config']!)).toMatchObject({ model: 'resnet18', inputSize: 64 });
    const card = cardFromMetadata(shipped.metadata)!;
    expect(card).toMatchObject({ model: 'resnet18', inputSize: 64, decoderWidth: 32, steps: 3, batchSize: 2, wallSeconds: 90, checkpoint: 'checkpoint-000000003.safetensors' });
    expect(card.hardware).toMatch(/CPU stop-gap/);
    expect(card.title).toMatch(/CPU stop-gap/);
    expect(card.data).toMatch(/train split .* 10 photos .*3 more held out/);
    expect(card.heldOut).toMatchObject({ photos: 3, seeds: [0, 1], maskRatio: 0.6, inputSize: 64 });

    // The same figure through the command line, on the shipped file, photos in key order.
    const photos = keys.sort().map((k) => join(corpus, 'heldout', `${k}.jpg`));
    const losses = [0, 1].map((seed) => {
      const out = execFileSync(process.execPath, [cli, 'reconstruct', '--checkpoint', join(pub, DEMO_MODEL_PATH), '--mask-ratio', '0.6',
        '--seed', String(seed), '--json', '--out', join(tmp.path, `grid-${seed}.png`), ...photos], { encoding: 'utf8' });
      return JSON.parse(out.trim().split('\n').pop()!).loss as number;
    });
    expect(card.heldOut.perSeed).toEqual(losses);
    expect(card.heldOut.mean).toBeCloseTo((losses[0]! + losses[1]!) / 2, 12);

    const doc = readFileSync(join(docs, 'demo-model.md'), 'utf8');
    expect(heldOutInDoc(doc)).toBe(Number(card.heldOut.mean.toFixed(3)));
    expect(doc).toContain('## The corpus');
    const grid = await sharp(join(docs, 'images/demo-model-heldout.png')).metadata();
    expect([grid.width, grid.height]).toEqual([4 * 64 + 3 * 2, 2 * 64 + 2]);
    expect((await sharp(join(docs, 'images/demo-model-loss.png')).metadata()).width).toBe(720);
    const list = JSON.parse(readFileSync(join(pub, DEMO_PHOTOS_LIST), 'utf8'));
    expect(list.map((p: { key: string }) => p.key)).toEqual(keys.sort());
    expect(list[0]).toMatchObject({ package: 'pkg', licence: 'CC0-1.0', author: 'Author 0' });
    for (const k of keys) expect(readFileSync(join(pub, 'demo/heldout', `${k}.jpg`))).toEqual(readFileSync(join(corpus, 'heldout', `${k}.jpg`)));

    // A second run replaces the doc section instead of adding one.
    execFileSync(process.execPath, ['--import', 'tsx', tool, checkpoint, '--corpus', corpus, '--public', pub, '--docs', docs, '--seeds', '1', '--grid-photos', '1'], { encoding: 'utf8', cwd: ROOT });
    const again = readFileSync(join(docs, 'demo-model.md'), 'utf8');
    expect(again.split('## The shipped model').length).toBe(2);
    expect(heldOutInDoc(again)).toBe(Number(losses[0]!.toFixed(3)));
  });

  it('refuses a file over the size cap and writes nothing', async () => {
    const checkpoint = makeRun(join(tmp.path, 'run2'));
    const corpus = join(tmp.path, 'corpus2');
    await makeCorpus(corpus, 1);
    const pub = join(tmp.path, 'public2');
    const r = spawnSync(process.execPath, ['--import', 'tsx', tool, checkpoint, '--corpus', corpus, '--public', pub, '--docs', join(tmp.path, 'nodocs'), '--max-mb', '0.01'], { encoding: 'utf8', cwd: ROOT });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/would be 0\.\d MB, over the 0\.01 MB allowed/);
    expect(existsSync(pub)).toBe(false);
  });
});
