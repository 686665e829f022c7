/**
 * The streaming tar reader and WebDataset grouping, on archives made by GNU tar: pax and GNU
 * long names, ustar prefixes, directories, non-image members, .tar.gz, truncation, corruption.
 */
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf } from '../../src/data/bytes.ts';
import { readTar, ShardError, parsePax } from '../../src/data/tar.ts';
import { splitKey, TarShard } from '../../src/data/webdataset.ts';
import { newMetrics } from '../../src/data/types.ts';
import { Rng } from '../helpers/random.ts';
import { fileBytes } from '../../src/platform/node/data-files.ts';
import { bytesEqual, collect, collectUntilError, gnuTar, tempDir, writeTree } from './helpers.ts';

const tmp = tempDir('tar');
afterAll(() => tmp.remove());

// A long directory so member paths pass 100 characters (ustar's name field) and, for the
// GNU and pax formats, past 255 (ustar's prefix + name) as well.
const longDir = `train/${'deep_folder_name_'.repeat(9)}end`;
const files: Record<string, Uint8Array | string> = {};
const keys: string[] = [];
const rng = new Rng(5);
for (let i = 0; i < 6; i++) {
  const key = i % 2 ? `${longDir}/n0144_${String(i).padStart(3, '0')}_${'x'.repeat(120)}` : `train/n0144_${i}`;
  keys.push(key);
  // Sizes around block boundaries: 511, 512, 513 bytes and more.
  files[`${key}.jpg`] = Uint8Array.from({ length: 500 + i * 7 + (i === 2 ? 12 : 0) }, () => rng.int(256));
  files[`${key}.cls`] = `${i * 10}`;
  if (i === 3) files[`${key}.json`] = '{"wnid":"n0144"}';
}
files['train/README.txt'] = 'not an image';
files['train/only_label.cls'] = '4';
writeTree(join(tmp.path, 'src'), files);
const sortedKeys = [...keys].sort();

function make(format: string, out: string, extra: string[] = []): string {
  const path = join(tmp.path, out);
  gnuTar(join(tmp.path, 'src'), [`--format=${format}`, ...extra, '-cf', path, 'train']);
  return path;
}

describe('readTar on GNU tar archives', () => {
  for (const format of ['pax', 'gnu']) {
    it(`reads every member of a ${format} archive with long names and directories`, async () => {
      const path = make(format, `${format}.tar`);
      const raw = readFileSync(path);
      // The archive really uses the extended headers under test.
      const flags = new Set<string>();
      for (let off = 0; off + 512 <= raw.length; off += 512) flags.add(String.fromCharCode(raw[off + 156]!));
      expect(flags.has(format === 'pax' ? 'x' : 'L')).toBe(true);
      // Read with tiny chunks so headers and data span chunk boundaries.
      const entries = [];
      for await (const e of readTar(bytesOf(raw, 333), 'x.tar')) entries.push(e);
      const fileNames = entries.filter((e) => e.type === 'file').map((e) => e.name).sort();
      expect(fileNames).toEqual(Object.keys(files).sort());
      expect(entries.filter((e) => e.type === 'directory').length).toBeGreaterThanOrEqual(2);
      for (const e of entries.filter((e) => e.type === 'file')) {
        const want = files[e.name]!;
        expect(bytesEqual(e.data, typeof want === 'string' ? Buffer.from(want) : want), e.name).toBe(true);
      }
    });
  }

  it('groups members into WebDataset samples and ignores the rest', async () => {
    const path = make('pax', 'group.tar');
    const metrics = newMetrics();
    const shard = new TarShard('group.tar', () => fileBytes(path));
    const samples = await collect(shard.samples(0, metrics));
    expect(samples.map((s) => s.key)).toEqual(sortedKeys);
    for (const s of samples) {
      const i = keys.indexOf(s.key);
      expect(s.label).toBe(i * 10);
      expect(s.format).toBe('jpg');
      expect(bytesEqual(s.image, files[`${s.key}.jpg`] as Uint8Array)).toBe(true);
      expect(s.json).toBe(i === 3 ? '{"wnid":"n0144"}' : null);
      expect(s.shard).toBe('group.tar');
    }
    // Directories (train, train/deep..., train/deep.../end?), README.txt and the label without an image.
    const dirs = 2;
    expect(metrics.ignoredEntries).toBe(dirs + 2);
    // Skipping: the same stream after its first 4 samples.
    const rest = await collect(shard.samples(4, newMetrics()));
    expect(rest.map((s) => s.key)).toEqual(sortedKeys.slice(4));
  });

  it('reads a .tar.gz made by GNU tar, streaming through the inflater', async () => {
    const path = make('gnu', 'group.tar.gz', ['-z']);
    const shard = new TarShard('group.tar.gz', () => fileBytes(path));
    const samples = await collect(shard.samples(0, newMetrics()));
    expect(samples.map((s) => s.key)).toEqual(sortedKeys);
  });

  it('ends a truncated tar with an error naming the shard, after the complete samples', async () => {
    const path = make('pax', 'cut.tar');
    const full = await collect(new TarShard('cut.tar', () => fileBytes(path)).samples(0, newMetrics()));
    // Cut in the middle of the data of the 4th sample's image.
    const raw = readFileSync(path);
    const marker = Buffer.from(full[3]!.image).subarray(0, 64);
    const cut = raw.indexOf(marker) + 100;
    expect(cut).toBeGreaterThan(100);
    writeFileSync(join(tmp.path, 'cut2.tar'), raw.subarray(0, cut));
    const { samples, error } = await collectUntilError(
      new TarShard('cut2.tar', () => fileBytes(join(tmp.path, 'cut2.tar'))).samples(0, newMetrics()),
    );
    expect(error).toBeInstanceOf(ShardError);
    expect(error!.message).toMatch(/^shard cut2\.tar: truncated/);
    expect(samples.map((s) => s.key)).toEqual(full.slice(0, 3).map((s) => s.key));

    // Cut exactly after the last member, before the end-of-archive blocks: every member is
    // whole but the archive is not, so the group being gathered (here the label-only group
    // that sorts last) is dropped, and every sample before it is delivered.
    let end = raw.length;
    while (end > 0 && raw[end - 1] === 0) end--;
    end = Math.ceil(end / 512) * 512;
    truncateSync(path, end);
    const r2 = await collectUntilError(new TarShard('cut.tar', () => fileBytes(path)).samples(0, newMetrics()));
    expect(r2.error?.message).toBe(`shard cut.tar: truncated in a header at byte ${end}`);
    expect(r2.samples.map((s) => s.key)).toEqual(full.map((s) => s.key));
  });

  it('ends a shard whose header is corrupt, and a truncated .tar.gz', async () => {
    const damaged = Buffer.from(readFileSync(make('pax', 'bad.tar')));
    damaged[0] ^= 0x55; // the first header's name: its checksum no longer matches
    const r = await collectUntilError(new TarShard('bad.tar', () => bytesOf(damaged)).samples(0, newMetrics()));
    expect(r.error?.message).toMatch(/shard bad\.tar: bad header checksum at byte 0/);
    expect(r.samples).toEqual([]);

    const gz = make('gnu', 'cut.tar.gz', ['-z']);
    const gzRaw = readFileSync(gz);
    const r2 = await collectUntilError(
      new TarShard('cut.tar.gz', () => bytesOf(gzRaw.subarray(0, gzRaw.length - 40))).samples(0, newMetrics()),
    );
    expect(r2.error).toBeInstanceOf(ShardError);
    expect(r2.error!.message).toMatch(/^shard cut\.tar\.gz: /);
  });

  it('reads the ustar prefix field for names up to 255 characters', async () => {
    const dir = join(tmp.path, 'ustar-src');
    const name = `a/${'b'.repeat(90)}/${'c'.repeat(60)}.cls`;
    writeTree(dir, { [name]: '7' });
    const path = join(tmp.path, 'prefix.tar');
    gnuTar(dir, ['--format=ustar', '-cf', path, 'a']);
    const names = [];
    for await (const e of readTar(fileBytes(path), 'prefix.tar')) names.push(e.name.replace(/\/$/, ''));
    expect(names).toContain(name);
  });
});

describe('helpers of the tar reader', () => {
  it('splits WebDataset keys at the first dot of the last component', () => {
    expect(splitKey('train/n01440764_10026.jpg')).toEqual({ key: 'train/n01440764_10026', ext: 'jpg' });
    expect(splitKey('a.b/c.seg.PNG')).toEqual({ key: 'a.b/c', ext: 'seg.png' });
    expect(splitKey('dir/noext')).toBeNull();
    expect(splitKey('dir/.hidden')).toBeNull();
  });

  it('parses pax records with multi-byte values', () => {
    const rec = (k: string, v: string) => {
      const body = ` ${k}=${v}\n`;
      let n = Buffer.byteLength(body) + 2;
      if (String(n).length + Buffer.byteLength(body) !== n) n++;
      return `${n}${body}`;
    };
    const data = Buffer.from(rec('path', 'déjà/vu.jpg') + rec('size', '12'));
    const pax = parsePax(data);
    expect(pax.get('path')).toBe('déjà/vu.jpg');
    expect(pax.get('size')).toBe('12');
  });
});
