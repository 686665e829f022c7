/** The bundled sample shard: 24+ real colour photos that decode, with labels and credits. */
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataLoader } from '../../src/data/loader.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';

const dir = new URL('../../public/data/', import.meta.url).pathname;

describe('bundled sample data', () => {
  it('is a small WebDataset shard of at least 24 colour photos, each credited', async () => {
    const manifest = JSON.parse(readFileSync(`${dir}sample.json`, 'utf8')) as { shards: string[]; classes: string[] };
    const size = manifest.shards.reduce((s, f) => s + statSync(`${dir}${f}`).size, 0);
    expect(size).toBeLessThan(5 * 2 ** 20);
    const { shards } = await nodeShards(manifest.shards.map((f) => `${dir}${f}`));
    const loader = new DataLoader({ shards, decoder: new SharpDecoder(), batchSize: 8, epochs: 1, augment: { size: 32 } });
    const keys: string[] = [];
    let colourful = 0;
    for (let b = await loader.next(); b; b = await loader.next()) {
      keys.push(...b.keys);
      for (let i = 0; i < b.batch; i++) {
        expect(b.labels[i]).toBeGreaterThanOrEqual(0);
        expect(b.labels[i]).toBeLessThan(manifest.classes.length);
        // Colour: the channels of some pixels differ clearly (a grey image would have r = g = b).
        const px = b.pixels.subarray(i * 32 * 32 * 3, (i + 1) * 32 * 32 * 3);
        let spread = 0;
        for (let p = 0; p < px.length; p += 3) spread += Math.max(px[p]!, px[p + 1]!, px[p + 2]!) - Math.min(px[p]!, px[p + 1]!, px[p + 2]!);
        if (spread / (32 * 32) > 10) colourful++;
      }
    }
    expect(keys.length).toBeGreaterThanOrEqual(24);
    expect(loader.metrics.skippedDecode + loader.metrics.ignoredEntries + loader.metrics.skippedShards).toBe(0);
    expect(colourful).toBeGreaterThanOrEqual(22); // the night sky and the storm are nearly grey
    const credits = readFileSync(`${dir}CREDITS.md`, 'utf8');
    for (const k of keys) expect(credits, k).toContain(`\`${k}\``);
  });
});
