/**
 * `npx webspark reconstruct` end to end: the fixtures' checkpoint (safetensors with official
 * keys and the fixture script's model description) on two 64 px PNG files; the PNG grid has
 * the documented layout and the --json loss equals the loss the OFFICIAL SparK code computes
 * for the same pixels, weights and masks in eval mode (tools/make-fixtures.py, manifest
 * `reconstruct`), within 10 x the official code's own float32 error (its float32 vs float64 run).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseMasks } from '../../src/cli/reconstruct.ts';
import { manifest } from '../model/fixture.ts';
import { expectScalarMeasured } from '../model/measured.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/model/${name}`, import.meta.url));

interface ReconstructFixture {
  weights: string;
  images: string[];
  input_size: number;
  mask: number[][];
  loss: number;
  loss_torch_fp32: number;
}

describe('webspark reconstruct', () => {
  it('writes the grid and prints the official masked loss', async () => {
    const ref = (manifest as unknown as { reconstruct: ReconstructFixture }).reconstruct;
    const out = join(mkdtempSync(join(tmpdir(), 'webspark-rec-')), 'grid.png');
    const masks = ref.mask.map((m) => m.join('')).join(',');
    const size = ref.input_size;
    const stdout = execFileSync(
      process.execPath,
      [cli, 'reconstruct', '--checkpoint', fixture(ref.weights), ...ref.images.map(fixture), '--input-size', String(size), '--mask', masks, '--out', out, '--json'],
      { encoding: 'utf8' },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([4 * size + 3 * 2, 2 * size + 2]);
    expectScalarMeasured(result.loss, ref.loss, ref.loss_torch_fp32, 'loss reconstruct CLI');
  });

  it('names what is wrong with a bad mask', () => {
    expect(() => parseMasks('10x1', 1, 2, 2)).toThrow(/4 characters of 0\/1/);
    expect(() => parseMasks('1001,0110,1111', 2, 2, 2)).toThrow(/3 masks for 2 images/);
  });
});
