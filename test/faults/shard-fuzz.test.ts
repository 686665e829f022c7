/**
 * Corrupt shards: a seeded run of tools/fuzz-shards.ts (the full 10,000 is
 * `npm run fuzz`), plus the two hand-made cases that pin down "intact": a shard cut inside
 * the next sample's data still delivers the sample before it; a damaged next header does not.
 */
import { describe, expect, it } from 'vitest';
import { bytesOf } from '../../src/data/bytes.ts';
import { ShardError } from '../../src/data/tar.ts';
import { newMetrics } from '../../src/data/types.ts';
import { webDatasetSamples } from '../../src/data/webdataset.ts';
import { header, intactSamples, runShardFuzz, shardSeeds } from '../../tools/fuzz-shards.ts';
import { collectUntilError } from '../data/helpers.ts';

describe('fuzzed shards', () => {
  it('1000 mutated shards: never a crash, every intact sample delivered, damaged images decode or are rejected', async () => {
    const s = await runShardFuzz(1000, 20261127);
    expect(s.failures.map((f) => `${f.outcome}: ${f.message}`)).toEqual([]);
    // The run must exercise both endings and the decoder, or it would prove little.
    expect(s.counts.complete).toBeGreaterThan(100);
    expect(s.counts.ShardError).toBeGreaterThan(300);
    expect(s.decoded).toBeGreaterThan(0);
    expect(s.rejected).toBeGreaterThan(0);
  });

  it('a cut inside the next sample\'s first member still delivers the sample before it', async () => {
    const { tar } = await shardSeeds();
    for (const seed of tar) {
      const [s0, s1] = seed.samples;
      // Cut 10 bytes into the data of sample 1's first member: its header (and pax) is whole.
      const cut = s0!.closedAt + 10;
      expect(cut).toBeLessThan(s1!.end);
      const r = await collectUntilError(webDatasetSamples(bytesOf(seed.bytes.subarray(0, cut), 97), seed.name, 0, newMetrics()));
      expect(r.error).toBeInstanceOf(ShardError);
      expect(r.samples.map((s) => s.key)).toEqual([s0!.key]);
      expect(r.samples[0]!.label).toBe(s0!.label);
      expect(intactSamples(seed, cut).map((s) => s.key)).toEqual([s0!.key]);
      // Cut inside that header instead: sample 0 might lack members, so nothing comes out.
      const early = await collectUntilError(webDatasetSamples(bytesOf(seed.bytes.subarray(0, s0!.closedAt - 1)), seed.name, 0, newMetrics()));
      expect(early.samples).toEqual([]);
      expect(intactSamples(seed, s0!.closedAt - 1)).toEqual([]);
    }
  });

  it('memory stays bounded by the shard: a header claiming 400 MiB in a 3 KB shard allocates no 400 MiB', async () => {
    const claimed = 400 * 2 ** 20;
    const shard = new Uint8Array(512 + 2560);
    shard.set(header('big.jpg', claimed, '0'));
    let peak = 0;
    async function* sampled(): AsyncGenerator<Uint8Array> {
      // Sampled while the reader waits for the next chunk, i.e. while it holds its buffer.
      for await (const chunk of bytesOf(shard, 512)) {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        yield chunk;
      }
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    const before = process.memoryUsage().arrayBuffers;
    const r = await collectUntilError(webDatasetSamples(sampled(), 'big', 0, newMetrics()));
    expect(r.error?.message).toMatch(/^shard big: truncated in the data of big\.jpg at byte 3072$/);
    // Other allocations in the process move this by a few MiB at most; 400 MiB would show.
    expect(peak - before).toBeLessThan(64 * 2 ** 20);
  });
});
