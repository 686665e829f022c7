/**
 * Shard sources: brace patterns, HTTP with retries and Range resume against a local server
 * on 127.0.0.1 that drops connections and answers 404/500, image folders, parquet shards.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandBraces } from '../../src/data/braces.ts';
import { urlShards } from '../../src/data/sources.ts';
import { ShardError } from '../../src/data/tar.ts';
import { newMetrics } from '../../src/data/types.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { Rng } from '../helpers/random.ts';
import { bytesEqual, collect, collectUntilError, gnuTar, jpeg, tempDir, writeTree } from './helpers.ts';

describe('brace patterns', () => {
  it('expands zero-padded ranges, lists, several and nested groups', () => {
    expect(expandBraces('imagenet1k-train-{0000..0003}.tar')).toEqual([
      'imagenet1k-train-0000.tar',
      'imagenet1k-train-0001.tar',
      'imagenet1k-train-0002.tar',
      'imagenet1k-train-0003.tar',
    ]);
    expect(expandBraces('s-{0000..1023}.tar')).toHaveLength(1024);
    expect(expandBraces('s-{0000..1023}.tar')[1023]).toBe('s-1023.tar');
    expect(expandBraces('{8..11}')).toEqual(['8', '9', '10', '11']);
    expect(expandBraces('{a,b}/{1..2}.tar')).toEqual(['a/1.tar', 'a/2.tar', 'b/1.tar', 'b/2.tar']);
    expect(expandBraces('x{a,b{1,2}}y')).toEqual(['xay', 'xb1y', 'xb2y']);
    expect(expandBraces('plain.tar')).toEqual(['plain.tar']);
    expect(expandBraces('{3..1}')).toEqual(['3', '2', '1']);
    expect(() => expandBraces('a{b')).toThrow(/unbalanced/);
  });
});

// ---- a local HTTP server ---------------------------------------------------------------------

const tmp = tempDir('sources');
const shardBytes = new Map<string, Buffer>();
const requests: { path: string; range: string | null; auth: string | null }[] = [];
/** Per path: how many more times the server cuts the body after `cutAt` bytes. */
const drops = new Map<string, { times: number; cutAt: number; ignoreRange: boolean }>();
let server: Server;
let base = '';
let expectedKeys: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const range = req.headers.range ?? null;
  requests.push({ path: url.pathname, range, auth: req.headers.authorization ?? null });
  const name = url.pathname.split('/').pop()!;
  if (url.pathname.startsWith('/status404/')) return void res.writeHead(404).end('no such shard');
  if (url.pathname.startsWith('/status500/')) return void res.writeHead(500).end('server error');
  if (url.pathname.startsWith('/auth/') && req.headers.authorization !== 'Bearer secret') {
    return void res.writeHead(401).end('token needed');
  }
  const body = shardBytes.get(name);
  if (!body) return void res.writeHead(404).end();
  const drop = drops.get(url.pathname);
  let start = 0;
  const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
  if (m && !drop?.ignoreRange) {
    start = Number(m[1]);
    const end = m[2] ? Number(m[2]) + 1 : body.length;
    res.writeHead(206, {
      'content-length': end - start,
      'content-range': `bytes ${start}-${end - 1}/${body.length}`,
      'accept-ranges': 'bytes',
    });
    if (!drop || drop.times === 0) return void res.end(body.subarray(start, end));
  } else {
    res.writeHead(200, { 'content-length': body.length });
    if (!drop || drop.times === 0) return void res.end(body);
  }
  // Send part of the body, then cut the connection (Content-Length promised more).
  drop.times--;
  res.flushHeaders();
  res.write(body.subarray(start, Math.max(start, drop.cutAt)), () => setTimeout(() => res.socket?.destroy(), 20));
}

beforeAll(async () => {
  // A WebDataset shard of 12 samples with incompressible image bytes (~3 KB each).
  const rng = new Rng(11);
  const files: Record<string, Uint8Array | string> = {};
  for (let i = 0; i < 12; i++) {
    const key = `s${String(i).padStart(3, '0')}`;
    files[`${key}.jpg`] = Uint8Array.from({ length: 3000 }, () => rng.int(256));
    files[`${key}.cls`] = String(i);
  }
  expectedKeys = Object.keys(files).filter((f) => f.endsWith('.jpg')).map((f) => f.slice(0, -4)).sort();
  writeTree(join(tmp.path, 'shard'), files);
  gnuTar(join(tmp.path, 'shard'), ['--format=gnu', '-cf', join(tmp.path, 'a.tar'), ...Object.keys(files)]);
  shardBytes.set('a.tar', readFileSync(join(tmp.path, 'a.tar')));
  gnuTar(join(tmp.path, 'shard'), ['--format=gnu', '-czf', join(tmp.path, 'a.tar.gz'), ...Object.keys(files)]);
  shardBytes.set('a.tar.gz', readFileSync(join(tmp.path, 'a.tar.gz')));
  shardBytes.set('tiny.parquet', readFileSync(new URL('../fixtures/data/tiny.parquet', import.meta.url)));
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  tmp.remove();
});

const fast = { retries: 3, backoffMs: 5, maxBackoffMs: 20 };

describe('shards over HTTP', () => {
  it('streams a shard and sends the Authorization header', async () => {
    const [shard] = urlShards(`${base}/auth/a.tar`, { ...fast, headers: { Authorization: 'Bearer secret' } });
    const samples = await collect(shard!.samples(0, newMetrics()));
    expect(samples.map((s) => s.key)).toEqual(expectedKeys);
    expect(samples.map((s) => s.label)).toEqual(expectedKeys.map((_, i) => i));
    expect(requests.at(-1)!.auth).toBe('Bearer secret');
  });

  it('resumes with a Range request after a dropped connection: every sample once', async () => {
    const path = '/drop/a.tar';
    drops.set(path, { times: 2, cutAt: 17_000, ignoreRange: false });
    const metrics = newMetrics();
    const before = requests.length;
    const [shard] = urlShards(`${base}${path}`, fast);
    const samples = await collect(shard!.samples(0, metrics));
    expect(samples.map((s) => s.key)).toEqual(expectedKeys);
    const direct = await collect((await nodeShards(join(tmp.path, 'a.tar'))).shards[0]!.samples(0, newMetrics()));
    samples.forEach((s, i) => expect(bytesEqual(s.image, direct[i]!.image), s.key).toBe(true));
    const mine = requests.slice(before);
    // First request whole, then ranges that start where the data stopped (<= the cut).
    expect(mine[0]!.range).toBeNull();
    expect(mine).toHaveLength(3);
    const starts = mine.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.range!)![1]));
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[0]).toBeLessThanOrEqual(17_000);
    expect(starts[1]).toBeGreaterThanOrEqual(starts[0]!);
    expect(metrics.retries).toBe(2);
  });

  it('restarts and skips the bytes already read when the server ignores Range', async () => {
    const path = '/norange/a.tar.gz';
    drops.set(path, { times: 1, cutAt: 9_000, ignoreRange: true });
    const metrics = newMetrics();
    const [shard] = urlShards(`${base}${path}`, fast);
    const samples = await collect(shard!.samples(0, metrics));
    expect(samples.map((s) => s.key)).toEqual(expectedKeys);
    expect(metrics.retries).toBe(1);
  });

  it('gives up on 404 at once and on 500 after its retries, with errors naming the URL', async () => {
    const m404 = newMetrics();
    const before = requests.length;
    const r404 = await collectUntilError(urlShards(`${base}/status404/a.tar`, fast)[0]!.samples(0, m404));
    expect(r404.error?.message).toBe(`shard ${base}/status404/a.tar: ${base}/status404/a.tar: HTTP 404 Not Found`);
    expect(r404.error).toBeInstanceOf(ShardError);
    expect(requests.length - before).toBe(1);
    expect(m404.retries).toBe(0);

    const m500 = newMetrics();
    const r500 = await collectUntilError(urlShards(`${base}/status500/a.tar`, fast)[0]!.samples(0, m500));
    expect(r500.error?.message).toMatch(/^shard .*status500\/a\.tar: .*HTTP 500 Internal Server Error \(gave up after 3 retries\)$/);
    expect(m500.retries).toBe(3);
    expect(r500.samples).toEqual([]);
  });

  it('reads a parquet shard by row groups over HTTP ranges', async () => {
    const [shard] = urlShards(`${base}/p/tiny.parquet`, fast);
    const samples = await collect(shard!.samples(0, newMetrics()));
    expect(samples.map((s) => s.key)).toEqual(['img_0.jpg', 'img_1.png', 'img_2.jpg', 'img_3.png', 'img_5.png', 'img_6.jpg']);
    expect(requests.at(-1)!.range).toMatch(/^bytes=\d+-\d+$/);
  });
});

describe('local shards and folders', () => {
  it('reads a parquet shard: image structs, labels, row groups, resume by row', async () => {
    const path = new URL('../fixtures/data/tiny.parquet', import.meta.url).pathname;
    const { shards } = await nodeShards(path);
    const metrics = newMetrics();
    const samples = await collect(shards[0]!.samples(0, metrics));
    expect(samples.map((s) => [s.key, s.index, s.label, s.format])).toEqual([
      ['img_0.jpg', 0, 0, 'jpg'],
      ['img_1.png', 1, 100, 'png'],
      ['img_2.jpg', 2, 200, 'jpg'],
      ['img_3.png', 3, 300, 'png'],
      ['img_5.png', 5, 500, 'png'],
      ['img_6.jpg', 6, 600, 'jpg'],
    ]);
    expect(metrics.ignoredEntries).toBe(1); // row 4 has no image
    for (const [i, s] of samples.entries()) {
      const meta = await sharp(s.image).metadata();
      const n = s.index;
      expect([meta.width, meta.height], `sample ${i}`).toEqual([20 + n * 3, 14 + n]);
    }
    // Starting at row 4 (inside the second row group) gives rows 5 and 6.
    const rest = await collect(shards[0]!.samples(4, newMetrics()));
    expect(rest.map((s) => s.index)).toEqual([5, 6]);
  });

  it('reads an ImageFolder (labels from sorted class folders) and a flat folder', async () => {
    const root = join(tmp.path, 'imagefolder');
    const files: Record<string, Uint8Array | string> = {};
    for (const [c, cls] of ['zebra', 'ant', 'moth'].entries()) {
      for (let i = 0; i < 3; i++) files[`train/${cls}/${cls}_${i}.jpg`] = await jpeg(8, 8, c * 3 + i);
    }
    files['train/ant/notes.txt'] = 'ignored';
    files['val/ant/v.jpg'] = await jpeg(8, 8, 99);
    writeTree(root, files);
    const ds = await nodeShards(root, { filesPerShard: 4 });
    expect(ds.classes).toEqual(['ant', 'moth', 'zebra']);
    expect(ds.shards).toHaveLength(3);
    const all = (await Promise.all(ds.shards.map((s) => collect(s.samples(0, newMetrics()))))).flat();
    expect(all.map((s) => s.key).sort()).toEqual(
      Object.keys(files).filter((f) => f.startsWith('train/') && f.endsWith('.jpg')).map((f) => f.slice(6)).sort(),
    );
    for (const s of all) expect(s.label).toBe(ds.classes.indexOf(s.key.split('/')[0]!));
    for (const s of all) expect(bytesEqual(s.image, files[`train/${s.key}`] as Uint8Array)).toBe(true);

    const flat = join(tmp.path, 'flat');
    writeTree(flat, { 'b.png': await sharp(await jpeg(4, 4, 1)).png().toBuffer(), 'a.jpg': await jpeg(4, 4, 2) });
    const f = await nodeShards(flat);
    expect(f.classes).toEqual([]);
    const fs = await collect(f.shards[0]!.samples(0, newMetrics()));
    expect(fs.map((s) => [s.key, s.label, s.format])).toEqual([
      ['a.jpg', -1, 'jpg'],
      ['b.png', -1, 'png'],
    ]);
  });

  it('resolves brace patterns of files and folders of shards', async () => {
    const ds = await nodeShards(join(tmp.path, 'a.{tar,tar.gz}'));
    expect(ds.shards.map((s) => s.name)).toEqual(['a.tar', 'a.tar.gz']);
    const dir = await nodeShards(tmp.path);
    expect(dir.shards.map((s) => s.name)).toEqual(['a.tar', 'a.tar.gz']);
    await expect(nodeShards(join(tmp.path, 'missing.tar'))).rejects.toThrow(/no such file/);
  });
});
