/**
 * Shard order, the shuffle buffer and the resume cursor: restarting from the cursor of any
 * emission yields exactly the samples an uninterrupted run yields after it.
 */
import { describe, expect, it } from 'vitest';
import { orderedSamples, type Emission, type OrderOptions, type ResumeCursor } from '../../src/data/order.ts';
import { ShardError } from '../../src/data/tar.ts';
import { newMetrics, type DataMetrics, type Sample, type Shard } from '../../src/data/types.ts';

/** An in-memory shard; `indexStep` spaces the indices like parquet rows with gaps; `failAt` breaks it. */
class MemShard implements Shard {
  opened = 0;
  constructor(
    readonly name: string,
    private count: number,
    private opts: { indexStep?: number; failAt?: number } = {},
  ) {}

  async *samples(start: number, _metrics: DataMetrics): AsyncGenerator<Sample> {
    this.opened++;
    const step = this.opts.indexStep ?? 1;
    for (let k = 0; k < this.count; k++) {
      if (k === this.opts.failAt) throw new ShardError(this.name, 'truncated');
      const index = k * step;
      if (index < start) continue;
      await Promise.resolve();
      yield { key: `${this.name}/${k}`, shard: this.name, index, image: new Uint8Array([k]), format: 'jpg', label: k, json: null };
    }
  }
}

function makeShards(): MemShard[] {
  return [
    new MemShard('a', 9),
    new MemShard('b', 0),
    new MemShard('c', 13, { indexStep: 3 }),
    new MemShard('d', 7, { failAt: 4 }),
    new MemShard('e', 1),
    new MemShard('f', 11),
  ];
}
const readable = 9 + 13 + 4 + 1 + 11;

async function run(opts: OrderOptions, limit = Infinity, shards = makeShards()): Promise<Emission[]> {
  const out: Emission[] = [];
  for await (const e of orderedSamples(shards, opts, newMetrics())) {
    out.push(e);
    if (out.length >= limit) break;
  }
  return out;
}

const summary = (es: Emission[]) => es.map((e) => `${e.epoch}:${e.index}:${e.sample.key}`);

describe('sample order', () => {
  it('emits every readable sample once per epoch, shard order and samples shuffled by seed', async () => {
    const metrics = newMetrics();
    const out: Emission[] = [];
    for await (const e of orderedSamples(makeShards(), { seed: 7, shuffleBuffer: 8, epochs: 3 }, metrics)) out.push(e);
    expect(out).toHaveLength(3 * readable);
    expect(metrics.skippedShards).toBe(3);
    expect(metrics.errors.at(-1)).toBe('shard d: truncated');
    const epochs = [0, 1, 2].map((ep) => out.filter((e) => e.epoch === ep).map((e) => e.sample.key));
    for (const keys of epochs) {
      expect(new Set(keys).size).toBe(readable);
      expect(keys).toContain('d/3');
      expect(keys).not.toContain('d/4');
    }
    // Epochs differ from each other and from the unshuffled order.
    expect(epochs[0]).not.toEqual(epochs[1]);
    const plain = (await run({ seed: 7, shuffleBuffer: 1, shuffleShards: false, epochs: 1 })).map((e) => e.sample.key);
    expect(plain.slice(0, 10)).toEqual([...Array(9)].map((_, k) => `a/${k}`).concat(['c/0']));
    expect(epochs[0]).not.toEqual(plain);
    // Same seed, same order; another seed, another order.
    expect(summary(await run({ seed: 7, shuffleBuffer: 8, epochs: 3 }))).toEqual(summary(out));
    expect(summary(await run({ seed: 8, shuffleBuffer: 8, epochs: 3 }))).not.toEqual(summary(out));
  });

  for (const shuffleBuffer of [1, 5, 16, 64]) {
    it(`resumes from any cursor exactly (shuffle buffer ${shuffleBuffer})`, async () => {
      const opts: OrderOptions = { seed: 3, shuffleBuffer, epochs: 2 };
      const full = await run(opts);
      expect(full).toHaveLength(2 * readable);
      // Every emission's cursor, through JSON as a checkpoint stores it.
      for (let k = 0; k < full.length; k += shuffleBuffer === 5 ? 1 : 3) {
        const cursor = JSON.parse(JSON.stringify(full[k]!.cursor)) as ResumeCursor;
        const rest = await run({ ...opts, cursor });
        expect(summary(rest), `resume after emission ${k}`).toEqual(summary(full.slice(k + 1)));
      }
    });
  }

  it('re-reads only from the oldest buffered sample on resume', async () => {
    const opts: OrderOptions = { seed: 1, shuffleBuffer: 4, shuffleShards: false, epochs: 1 };
    const full = await run(opts);
    // Late in the epoch, the buffer spans the last shard only: earlier shards are not opened.
    const k = full.findIndex((e) => e.cursor.refill.shardIndex === 5 && e.cursor.shardIndex === 5);
    expect(k).toBeGreaterThan(0);
    const shards = makeShards();
    const rest = await run({ ...opts, cursor: full[k]!.cursor }, Infinity, shards);
    expect(summary(rest)).toEqual(summary(full.slice(k + 1)));
    expect(shards.map((s) => s.opened)).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it('rejects a cursor made for other settings', async () => {
    const [first] = await run({ seed: 3, shuffleBuffer: 4 }, 1);
    await expect(run({ seed: 3, shuffleBuffer: 5, cursor: first!.cursor })).rejects.toThrow(/shuffle buffer 4/);
    await expect(run({ seed: 4, shuffleBuffer: 4, cursor: first!.cursor })).rejects.toThrow(/seed 3/);
  });

  it('fails clearly when no shard can be read', async () => {
    await expect(run({ seed: 0, shuffleBuffer: 4 }, Infinity, [new MemShard('x', 3, { failAt: 0 })])).rejects.toThrow(
      /no sample could be read from 1 shards/,
    );
  });
});
