/**
 * `npx webspark reconstruct` end to end: the fixtures' checkpoint (safetensors with official
 * keys and the fixture script's model description) on a photo from the bundled shard and on an
 * image already at the input size; the PNG grid has the documented layout and the --json loss
 * equals the official masked loss computed in-process on the same pixels.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { TarShard } from '../../src/data/webdataset.ts';
import { newMetrics } from '../../src/data/types.ts';
import { fileBytes } from '../../src/platform/node/data-files.ts';
import { loadSquareRgb } from '../../src/platform/node/images.ts';
import { normalizeRgb } from '../../src/data/imagenet.ts';
import { parseMasks } from '../../src/cli/reconstruct.ts';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { loadStateDict } from '../../src/io/state-dict.ts';
import { createSparK, type SparKConfig } from '../../src/models/registry.ts';
import { SiteLayout } from '../../src/tensor/layout.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));
const checkpoint = fileURLToPath(new URL('../fixtures/model/resnet18s.weights.safetensors', import.meta.url));
const shard = fileURLToPath(new URL('../../public/data/sample-000000.tar', import.meta.url));

async function firstPhoto(dir: string): Promise<string> {
  for await (const s of new TarShard('sample', () => fileBytes(shard), false).samples(0, newMetrics())) {
    const path = join(dir, `photo.${s.format}`);
    await sharp(s.image).toFile(path);
    return path;
  }
  throw new Error('empty shard');
}

describe('webspark reconstruct', () => {
  const getCtx = useContext();

  it('writes the grid and prints the official masked loss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webspark-rec-'));
    const photo = await firstPhoto(dir);
    const small = join(dir, 'small.png');
    await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 80, b: 30 } } })
      .composite([{ input: Buffer.from('<svg width="64" height="64"><circle cx="20" cy="30" r="14" fill="#2060c0"/></svg>') }])
      .png()
      .toFile(small);
    const out = join(dir, 'grid.png');
    const masks = '1001,0110';
    const stdout = execFileSync(process.execPath, [cli, 'reconstruct', '--checkpoint', checkpoint, photo, small, '--input-size', '64', '--mask', masks, '--out', out, '--json'], {
      encoding: 'utf8',
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([4 * 64 + 3 * 2, 2 * 64 + 2]);

    // The same computation in-process.
    const ctx = getCtx();
    const file = readWeightFile(readFileSync(checkpoint), checkpoint);
    const model = createSparK(ctx, new Rng(0), { ...(file.config as SparKConfig), inputSize: 64 });
    loadStateDict(model, file.arrays, false);
    model.eval();
    const layout = SiteLayout.dense(2, 64, 64);
    const pixels = new Float32Array(layout.rows * 3);
    pixels.set(normalizeRgb(await loadSquareRgb(photo, 64)), 0);
    pixels.set(normalizeRgb(await loadSquareRgb(small, 64)), 64 * 64 * 3);
    const image = ctx.fromArray(pixels, [layout.rows, 3], layout);
    const loss = ctx.noGrad(() => model.forward(image, parseMasks(masks, 2, 2, 2)).loss);
    const expected = (await loss.read())[0]!;
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(Math.abs(result.loss - expected) / expected).toBeLessThan(1e-5);
    ctx.dispose();
  });

  it('names what is wrong with a bad mask', () => {
    expect(() => parseMasks('10x1', 1, 2, 2)).toThrow(/4 characters of 0\/1/);
    expect(() => parseMasks('1001,0110,1111', 2, 2, 2)).toThrow(/3 masks for 2 images/);
  });
});
