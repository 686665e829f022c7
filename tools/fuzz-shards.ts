/**
 * Fuzzes the shard path: seeded mutations (byte flips, truncation, header damage with the
 * checksum fixed up so the parser really sees it, pax damage, zero blocks, duplicated blocks,
 * insertions, deletions) of WebDataset tar shards built here, read through the tar reader and
 * the WebDataset grouping in random chunk sizes, and every damaged image that comes out
 * through the Node decoder (sharp). Also gzipped shards (no crash or hang only, see below).
 *
 *   node --import tsx tools/fuzz-shards.ts --count 10000 [--seed 1]
 *
 * Checks for each mutated shard:
 * - the stream ends normally or with a ShardError (never another exception, never a hang);
 * - every INTACT sample comes out first, in order, byte for byte with its label and json.
 *   A sample is intact when all its bytes (its members' header blocks, pax records, data and
 *   padding) AND the header of the member after it (its pax record and ustar block, or the
 *   end-of-archive block) lie wholly before the first damaged byte (the first offset where
 *   the mutated shard differs from the original, or its new length). The next header is
 *   included because grouping can close a sample only once it knows the next key (or the
 *   end): a sample whose successor's header is damaged may lack members, so it is dropped
 *   rather than delivered with, say, its label missing;
 * - each delivered image that differs from every original image decodes or is rejected with
 *   an Error (the loader then counts it in skippedDecode).
 * For .tar.gz only the first check applies: a damaged deflate stream has no simple byte map.
 *
 * Prints the outcome counts and the slowest shard; exits 1 on any failure.
 * test/faults/shard-fuzz.test.ts runs a smaller count of the same loop.
 */
import { gzipSync } from 'fflate';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { gunzip } from '../src/data/bytes.ts';
import { ShardError } from '../src/data/tar.ts';
import { newMetrics, type Sample } from '../src/data/types.ts';
import { webDatasetSamples } from '../src/data/webdataset.ts';
import { SharpDecoder } from '../src/platform/node/data-decode.ts';
import { FuzzRng } from './fuzz-io.ts';

const BLOCK = 512;
const enc = new TextEncoder();

interface Member {
  name: string;
  data: Uint8Array;
}

/** Where a sample lies in the shard and what it must come out as. */
export interface SeedSample {
  key: string;
  start: number;
  /** One past its last padding byte. */
  end: number;
  /**
   * One past the header block(s) of the next member (its pax record too, which carries the
   * name) or of the end-of-archive block: where the next key, or the end, becomes known.
   */
  closedAt: number;
  image: Uint8Array;
  label: number;
  json: string | null;
}

export interface ShardSeed {
  name: string;
  bytes: Uint8Array;
  samples: SeedSample[];
  /** Offsets of header blocks (ustar and pax 'x'), for aimed damage. */
  headers: number[];
  /** [start, end) of pax record data. */
  pax: [number, number][];
}

function octal(block: Uint8Array, at: number, len: number, v: number): void {
  block.set(enc.encode(v.toString(8).padStart(len - 1, '0')), at);
}

function checksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.set(enc.encode(sum.toString(8).padStart(6, '0')), 148);
  block[154] = 0;
  block[155] = 0x20;
}

export function header(name: string, size: number, type: string): Uint8Array {
  const b = new Uint8Array(BLOCK);
  b.set(enc.encode(name).subarray(0, 100), 0);
  octal(b, 100, 8, 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, 0);
  b[156] = type.charCodeAt(0);
  b.set(enc.encode('ustar\u000000'), 257);
  checksum(b);
  return b;
}

/** A ustar shard with a pax record for names over 100 bytes; returns where everything lies. */
export function writeShard(name: string, samples: { key: string; members: Member[] }[]): ShardSeed {
  const parts: Uint8Array[] = [];
  let at = 0;
  const headers: number[] = [];
  const pax: [number, number][] = [];
  const push = (b: Uint8Array) => {
    parts.push(b);
    at += b.length;
  };
  const padded = (d: Uint8Array) => {
    const out = new Uint8Array(Math.ceil(d.length / BLOCK) * BLOCK);
    out.set(d);
    return out;
  };
  const out: SeedSample[] = [];
  const firstHeaderEnd: number[] = [];
  for (const s of samples) {
    const start = at;
    for (const [mi, m] of s.members.entries()) {
      if (m.name.length > 100) {
        const rec = ` path=${m.name}\n`;
        let len = rec.length + 2;
        if (`${len}${rec}`.length !== len) len = `${len}${rec}`.length;
        const data = enc.encode(`${len}${rec}`);
        headers.push(at);
        push(header('PaxHeader', data.length, 'x'));
        pax.push([at, at + data.length]);
        push(padded(data));
      }
      headers.push(at);
      push(header(m.name, m.data.length, '0'));
      if (mi === 0) firstHeaderEnd.push(at);
      push(padded(m.data));
    }
    const img = s.members.find((m) => /\.(png|jpg)$/.test(m.name))!.data;
    const cls = s.members.find((m) => m.name.endsWith('.cls'));
    const json = s.members.find((m) => m.name.endsWith('.json'));
    out.push({
      key: s.key,
      start,
      end: at,
      closedAt: 0,
      image: img,
      label: cls ? Number(new TextDecoder().decode(cls.data)) : -1,
      json: json ? new TextDecoder().decode(json.data) : null,
    });
  }
  out.forEach((s, i) => (s.closedAt = firstHeaderEnd[i + 1] ?? s.end + BLOCK));
  push(new Uint8Array(2 * BLOCK));
  const bytes = new Uint8Array(at);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return { name, bytes, samples: out, headers, pax };
}

/** Two tar seeds (short and long names, PNG and JPEG, .cls and .json) and one gzipped. */
export async function shardSeeds(): Promise<{ tar: ShardSeed[]; gz: Uint8Array }> {
  const rng = new FuzzRng(5);
  const image = async (i: number, fmt: 'png' | 'jpg'): Promise<Uint8Array> => {
    const [w, h] = [6 + (i % 5), 5 + (i % 3)];
    const raw = Buffer.from(Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)));
    const s = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
    return new Uint8Array(await (fmt === 'png' ? s.png() : s.jpeg({ quality: 80 })).toBuffer());
  };
  const a: { key: string; members: Member[] }[] = [];
  for (let i = 0; i < 6; i++) {
    const key = `train/n0144_${i}`;
    const members: Member[] = [{ name: `${key}.jpg`, data: await image(i, 'jpg') }, { name: `${key}.cls`, data: enc.encode(String(100 + i)) }];
    if (i % 2) members.push({ name: `${key}.json`, data: enc.encode(JSON.stringify({ caption: `sample ${i}` })) });
    a.push({ key, members });
  }
  const b: { key: string; members: Member[] }[] = [];
  for (let i = 0; i < 5; i++) {
    const key = `${'deep/'.repeat(22)}img_${i}`; // > 100 bytes: a pax 'x' header carries the path
    b.push({ key, members: [{ name: `${key}.cls`, data: enc.encode(String(i)) }, { name: `${key}.png`, data: await image(i + 7, 'png') }] });
  }
  const tar = [writeShard('a.tar', a), writeShard('b.tar', b)];
  return { tar, gz: gzipSync(tar[0]!.bytes) };
}

const KINDS = ['flip', 'truncate', 'header', 'header', 'pax', 'zero', 'dup', 'insert', 'delete'] as const;
/** Header fields worth aiming at: name, mode, size, typeflag, magic/version, prefix. */
const FIELDS: [number, number][] = [[0, 100], [100, 8], [124, 12], [124, 12], [156, 1], [257, 8], [345, 155]];
const HOSTILE = [0, 0x20, 0x30, 0x37, 0x38, 0x2f, 0x2e, 0x80, 0xff, 0x78, 0x67, 0x4c, 0x35, 0x31];

/** One mutated copy of `src` and a word for what was done. */
export function mutateShard(rng: FuzzRng, seed: ShardSeed | null, src: Uint8Array): { bytes: Uint8Array; kind: string } {
  let kind: string = rng.pick(KINDS);
  if (!seed && (kind === 'header' || kind === 'pax')) kind = 'flip';
  if (seed && kind === 'pax' && seed.pax.length === 0) kind = 'header';
  let out = src.slice();
  switch (kind) {
    case 'flip':
      for (let i = 1 + rng.int(8); i > 0; i--) out[rng.int(out.length)]! ^= 1 + rng.int(255);
      break;
    case 'truncate':
      out = out.slice(0, rng.int(out.length));
      break;
    case 'header': {
      // Damage a header field, then fix the checksum so the damage reaches the parser.
      const h = rng.pick(seed!.headers);
      for (let i = 1 + rng.int(3); i > 0; i--) {
        const [f, len] = rng.pick(FIELDS);
        const at = h + f + rng.int(len);
        out[at] = rng.next() < 0.7 ? rng.pick(HOSTILE) : rng.int(256);
      }
      const block = out.subarray(h, h + BLOCK);
      if (rng.next() < 0.9) checksum(block);
      break;
    }
    case 'pax': {
      const [a, b] = rng.pick(seed!.pax);
      for (let i = 1 + rng.int(3); i > 0; i--) out[a + rng.int(b - a)] = rng.pick([0x20, 0x3d, 0x0a, 0x30, 0x39, 0, rng.int(256)]);
      break;
    }
    case 'zero': {
      const at = rng.int(out.length / BLOCK) * BLOCK;
      out.fill(0, at, at + BLOCK);
      break;
    }
    case 'dup': {
      const blocks = Math.floor(out.length / BLOCK);
      const from = rng.int(blocks) * BLOCK;
      const to = rng.int(blocks) * BLOCK;
      out.set(src.subarray(from, from + BLOCK), to);
      break;
    }
    case 'insert': {
      const at = rng.int(src.length + 1);
      const extra = Uint8Array.from({ length: 1 + rng.int(rng.next() < 0.3 ? 1024 : 16) }, () => rng.int(256));
      out = new Uint8Array(src.length + extra.length);
      out.set(src.subarray(0, at));
      out.set(extra, at);
      out.set(src.subarray(at), at + extra.length);
      break;
    }
    case 'delete': {
      const at = rng.int(src.length);
      const n = 1 + rng.int(rng.next() < 0.3 ? 1024 : 16);
      out = new Uint8Array([...src.subarray(0, at), ...src.subarray(at + n)]);
      break;
    }
  }
  return { bytes: out, kind };
}

/** The first offset where `b` differs from `a` (its length if it is a shorter prefix). */
export function firstDamage(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return b.length < a.length ? b.length : Infinity;
}

/** The samples that must come out of a shard damaged first at `damage` (see the file comment). */
export function intactSamples(seed: ShardSeed, damage: number): SeedSample[] {
  return seed.samples.filter((s) => s.closedAt <= damage);
}

export type ShardOutcome = 'complete' | 'ShardError' | 'other' | 'lost' | 'decode-crash';

export interface ShardResult {
  outcome: ShardOutcome;
  kind: string;
  ms: number;
  delivered: number;
  decoded: number;
  rejected: number;
  message?: string;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

async function* chunked(bytes: Uint8Array, rng: FuzzRng): AsyncGenerator<Uint8Array> {
  // Random chunk sizes, so header blocks and members straddle chunk boundaries.
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + rng.int(rng.next() < 0.5 ? 700 : 5000);
    yield bytes.subarray(i, Math.min(bytes.length, i + n));
    i += n;
  }
}

export async function fuzzShard(rng: FuzzRng, seed: ShardSeed | null, src: Uint8Array, decoder: SharpDecoder, originals: Uint8Array[]): Promise<ShardResult> {
  const { bytes, kind } = mutateShard(rng, seed, src);
  const t0 = performance.now();
  const samples: Sample[] = [];
  let outcome: ShardOutcome = 'complete';
  let message: string | undefined;
  try {
    const stream = seed ? chunked(bytes, rng) : gunzip(chunked(bytes, rng));
    for await (const s of webDatasetSamples(stream, 'fuzz', 0, newMetrics())) samples.push(s);
  } catch (e) {
    message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    outcome = e instanceof ShardError ? 'ShardError' : 'other';
  }
  if (seed && outcome !== 'other') {
    const intact = intactSamples(seed, firstDamage(src, bytes));
    const bad = intact.findIndex((s, i) => {
      const d = samples[i];
      return !d || d.key !== s.key || !same(d.image, s.image) || d.label !== s.label || d.json !== s.json;
    });
    if (bad >= 0) {
      outcome = 'lost';
      message = `intact sample ${intact[bad]!.key} (#${bad}) missing or changed; delivered ${samples.map((s) => s.key).join(', ')}; ${message ?? ''}`;
    }
  }
  let decoded = 0;
  let rejected = 0;
  for (const s of samples) {
    if (originals.some((o) => same(o, s.image))) continue;
    try {
      await decoder.decode(s.image, s.format, 8, (w, h) => ({ top: 0, left: 0, width: w, height: h }));
      decoded++;
    } catch (e) {
      if (e instanceof Error) rejected++;
      else if (outcome !== 'lost' && outcome !== 'other') {
        outcome = 'decode-crash';
        message = `decoder threw a non-Error: ${String(e)}`;
      }
    }
  }
  return { outcome, kind, ms: performance.now() - t0, delivered: samples.length, decoded, rejected, message };
}

export interface ShardFuzzSummary {
  counts: Record<ShardOutcome, number>;
  failures: ShardResult[];
  maxMs: number;
  delivered: number;
  decoded: number;
  rejected: number;
}

/** `count` mutated shards, cycling over the two tar seeds and the gzipped one. */
export async function runShardFuzz(count: number, seedNumber: number): Promise<ShardFuzzSummary> {
  const rng = new FuzzRng(seedNumber);
  const { tar, gz } = await shardSeeds();
  const originals = tar.flatMap((t) => t.samples.map((s) => s.image));
  const decoder = new SharpDecoder();
  const sum: ShardFuzzSummary = {
    counts: { complete: 0, ShardError: 0, other: 0, lost: 0, 'decode-crash': 0 },
    failures: [],
    maxMs: 0,
    delivered: 0,
    decoded: 0,
    rejected: 0,
  };
  for (let i = 0; i < count; i++) {
    const pick = i % 5; // a, b, a, b, gz
    const seed = pick === 4 ? null : tar[pick % 2]!;
    const r = await fuzzShard(rng, seed, seed ? seed.bytes : gz, decoder, originals);
    sum.counts[r.outcome]++;
    sum.maxMs = Math.max(sum.maxMs, r.ms);
    sum.delivered += r.delivered;
    sum.decoded += r.decoded;
    sum.rejected += r.rejected;
    if (r.outcome === 'other' || r.outcome === 'lost' || r.outcome === 'decode-crash') {
      sum.failures.push({ ...r, message: `${seed?.name ?? 'a.tar.gz'} #${i} (${r.kind}): ${r.message}` });
    }
  }
  return sum;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, fallback: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const count = opt('--count', 10000);
  const t0 = performance.now();
  const s = await runShardFuzz(count, opt('--seed', 1));
  const outcomes = Object.entries(s.counts).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ');
  console.log(
    `shards: ${count} mutated shards in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${outcomes}; ` +
      `${s.delivered} samples delivered, ${s.decoded + s.rejected} damaged images decoded (${s.rejected} rejected); slowest shard ${s.maxMs.toFixed(1)} ms`,
  );
  for (const f of s.failures.slice(0, 20)) console.log(`  ${f.outcome}: ${f.message}`);
  process.exit(s.failures.length ? 1 : 0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
