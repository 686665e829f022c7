/**
 * Network faults end to end, against a local server on 127.0.0.1:
 * a STALLED body (headers sent, then silence with the socket open), stalled headers, and a
 * loader over five shards of which one is 404, one 500, one cut halfway and one stalls.
 * test/data/sources.test.ts covers 404/500/cut/no-Range on a single shard; this file adds
 * the stall watchdog (src/data/http.ts `readTimeoutMs`) and the loader carrying on.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesOf } from '../../src/data/bytes.ts';
import { DataLoader } from '../../src/data/loader.ts';
import { urlShards } from '../../src/data/sources.ts';
import { ShardError } from '../../src/data/tar.ts';
import { newMetrics } from '../../src/data/types.ts';
import { webDatasetSamples } from '../../src/data/webdataset.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { collect, collectUntilError, gnuTar, jpeg, tempDir, writeTree } from '../data/helpers.ts';

const tmp = tempDir('faults-net');
const shards = new Map<string, Buffer>();
const keysOf = new Map<string, string[]>();
/** Per path: how many more requests stall (after `at` body bytes; -1 = before the headers). */
const stalls = new Map<string, { times: number; at: number }>();
const requests: { path: string; range: string | null }[] = [];
const sockets = new Set<Socket>();
let server: Server;
let base = '';
const cutOf = (body: Buffer) => Math.floor(body.length / 2);

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url!, 'http://x').pathname;
  const range = req.headers.range ?? null;
  requests.push({ path, range });
  if (path.startsWith('/404/')) return void res.writeHead(404).end('gone');
  if (path.startsWith('/500/')) return void res.writeHead(500).end('broken');
  const body = shards.get(path.split('/').pop()!);
  if (!body) return void res.writeHead(404).end();
  const m = /^bytes=(\d+)-$/.exec(range ?? '');
  const start = m ? Number(m[1]) : 0;
  const stall = stalls.get(path);
  if (stall && stall.times > 0) {
    stall.times--;
    if (stall.at < 0) return; // never answer: the request hangs before its headers
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length - start,
      ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    res.write(body.subarray(start, Math.max(start, stall.at))); // then silence, socket open
    return;
  }
  if (path.startsWith('/cut/')) {
    // Every answer stops at the same byte (half the shard) and drops the connection: the
    // resumed requests never get past it, so the shard is given up after its retries.
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length - start,
      ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    res.write(body.subarray(start, Math.max(start, cutOf(body))), () => setTimeout(() => res.socket?.destroy(), 10));
    return;
  }
  if (m) {
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    return void res.end(body.subarray(start));
  }
  res.writeHead(200, { 'content-length': body.length }).end(body);
}

beforeAll(async () => {
  for (const s of ['a', 'b', 'c', 'd', 'e']) {
    const files: Record<string, Uint8Array | string> = {};
    const keys: string[] = [];
    for (let i = 0; i < 6; i++) {
      const key = `${s}${i}`;
      keys.push(key);
      // ~6 KB JPEGs of noise, so a shard is several TCP chunks and a cut lands mid-sample.
      files[`${key}.jpg`] = await jpeg(48, 48, s.charCodeAt(0) * 10 + i, 100);
      files[`${key}.cls`] = String(i);
    }
    writeTree(join(tmp.path, s), files);
    gnuTar(join(tmp.path, s), ['--format=gnu', '-cf', join(tmp.path, `${s}.tar`), ...Object.keys(files)]);
    shards.set(`${s}.tar`, readFileSync(join(tmp.path, `${s}.tar`)));
    keysOf.set(s, keys);
  }
  server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy(); // the stalled responses never end by themselves
  await new Promise<void>((resolve) => server.close(() => resolve()));
  tmp.remove();
});

// Short watchdog and backoff so the test takes well under a second per stall.
const fast = { retries: 2, backoffMs: 5, maxBackoffMs: 20, readTimeoutMs: 300 };

describe('a stalled connection', () => {
  it('is aborted by the read watchdog and resumed by Range: every sample once', async () => {
    const path = '/stall/a.tar';
    const size = shards.get('a.tar')!.length;
    stalls.set(path, { times: 1, at: Math.floor(size / 2) });
    const before = requests.length;
    const metrics = newMetrics();
    const samples = await collect(urlShards(`${base}${path}`, fast)[0]!.samples(0, metrics));
    expect(samples.map((s) => s.key)).toEqual(keysOf.get('a'));
    const mine = requests.slice(before);
    expect(mine).toHaveLength(2);
    expect(mine[1]!.range).toBe(`bytes=${Math.floor(size / 2)}-`);
    expect(metrics.retries).toBe(1);
  });

  it('before its headers: retried; when it keeps stalling, the shard fails with a named error', async () => {
    stalls.set('/hang/b.tar', { times: 1, at: -1 });
    const ok = await collect(urlShards(`${base}/hang/b.tar`, fast)[0]!.samples(0, newMetrics()));
    expect(ok.map((s) => s.key)).toEqual(keysOf.get('b'));

    stalls.set('/hang2/b.tar', { times: 99, at: -1 });
    const metrics = newMetrics();
    const r = await collectUntilError(urlShards(`${base}/hang2/b.tar`, fast)[0]!.samples(0, metrics));
    expect(r.error).toBeInstanceOf(ShardError);
    expect(r.error!.message).toMatch(/hang2\/b\.tar: stalled: no data for 300 ms \(gave up after 2 retries\)$/);
    expect(metrics.retries).toBe(2);
  });

  it('a slow consumer is not a stall: the watchdog pauses while a chunk is held', async () => {
    const metrics = newMetrics();
    const got: string[] = [];
    for await (const s of urlShards(`${base}/slow/c.tar`, { ...fast, readTimeoutMs: 100 })[0]!.samples(0, metrics)) {
      got.push(s.key);
      await new Promise((r) => setTimeout(r, 150)); // longer than the watchdog, per sample
    }
    expect(got).toEqual(keysOf.get('c'));
    expect(metrics.retries).toBe(0);
  });
});

describe('the loader over damaged remote shards', () => {
  it('skips 404, 500, a cut and a stalled shard with named errors and delivers all the rest', async () => {
    stalls.set('/stall2/e.tar', { times: 99, at: 1000 });
    const names = [`${base}/ok/a.tar`, `${base}/404/b.tar`, `${base}/500/c.tar`, `${base}/cut/d.tar`, `${base}/stall2/e.tar`];
    const list = names.flatMap((n) => urlShards(n, fast));
    const loader = new DataLoader({ shards: list, decoder: new SharpDecoder(), batchSize: 4, epochs: 1, augment: { size: 16 }, shuffleShards: false });
    const keys: string[] = [];
    for (let b = await loader.next(); b; b = await loader.next()) keys.push(...b.keys);
    const m = loader.metrics;
    // All of a; of d (cut halfway on every try) exactly the samples that the first half of
    // its bytes holds whole (read locally from the truncated bytes); of e, what came before
    // its stall; nothing of b and c.
    const d = shards.get('d.tar')!;
    const dHalf = await collectUntilError(webDatasetSamples(bytesOf(d.subarray(0, cutOf(d))), 'd', 0, newMetrics()));
    const eHead = await collectUntilError(webDatasetSamples(bytesOf(shards.get('e.tar')!.subarray(0, 1000)), 'e', 0, newMetrics()));
    expect(dHalf.samples.length).toBeGreaterThan(0);
    expect(dHalf.samples.length).toBeLessThan(6);
    expect(keys.filter((k) => k.startsWith('a')).sort()).toEqual(keysOf.get('a'));
    expect(keys.filter((k) => k.startsWith('b') || k.startsWith('c'))).toEqual([]);
    expect(keys.filter((k) => k.startsWith('d')).sort()).toEqual(dHalf.samples.map((x) => x.key));
    expect(keys.filter((k) => k.startsWith('e')).sort()).toEqual(eHead.samples.map((x) => x.key));
    expect(m.skippedShards).toBe(4);
    const text = m.errors.join('\n');
    expect(text).toContain(`${base}/404/b.tar: HTTP 404`);
    expect(text).toMatch(/500\/c\.tar: HTTP 500 .*gave up after 2 retries/);
    expect(text).toMatch(/cut\/d\.tar: .*(connection lost|body ended).*gave up after 2 retries/);
    expect(text).toMatch(/stall2\/e\.tar: .*stalled: no data for 300 ms.*gave up after 2 retries/);
  });
});
