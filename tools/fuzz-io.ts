/**
 * Fuzzes the weight-file readers: seeded mutations (byte flips, truncation, header and
 * directory damage, pickle damage with the zip CRC fixed up so the unpickler really sees it,
 * splices, insertions, deletions) of the fixtures in test/fixtures/io/. Every outcome must be
 * a successful parse or the format's own error (SafetensorsError / PthError), within a second.
 *
 *   node --import tsx tools/fuzz-io.ts --count 10000 [--seed 1]
 *
 * prints the outcome counts per format and exits 1 if any other exception or a slow parse was
 * seen. test/io/fuzz.test.ts runs a smaller count of the same loop.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PthError, pthStateDict, readPth } from '../src/io/pth.ts';
import { readSafetensors, SafetensorsError, toFloat32, writeSafetensors } from '../src/io/safetensors.ts';
import { crc32, ZipReader } from '../src/io/zip.ts';

/** mulberry32: small, seeded, good enough to pick mutations. */
export class FuzzRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

export type Format = 'safetensors' | 'pth';
export type Outcome = 'ok' | 'SafetensorsError' | 'PthError' | 'other' | 'slow';

/** A seed file and the byte ranges worth aiming at. */
export interface Seed {
  name: string;
  bytes: Uint8Array;
  /** safetensors: the 8-byte length + JSON header. pth: the stored data.pkl bytes. */
  header: [number, number];
  /** pth only: where data.pkl's CRC sits in the central directory (to fix it up). */
  crcAt?: number;
  /** pth: the central directory and end records. */
  tail?: [number, number];
}

const JSON_CHARS = '{}[]",:-0123456789e. \\ntfu';
const PICKLE_OPS = [0x28, 0x2e, 0x4e, 0x4b, 0x4a, 0x58, 0x5d, 0x7d, 0x29, 0x74, 0x85, 0x86, 0x71, 0x68, 0x63, 0x52, 0x62, 0x51, 0x75, 0x65, 0x94, 0x93, 0x8a, 0xff];

export function safetensorsSeed(name: string, bytes: Uint8Array): Seed {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return { name, bytes, header: [0, 8 + n] };
}

export function pthSeed(name: string, bytes: Uint8Array): Seed {
  const zip = new ZipReader(bytes);
  const [pklName, pkl] = [...zip.entries].find(([k]) => k.endsWith('/data.pkl'))!;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const start = pkl.headerOffset + 30 + view.getUint16(pkl.headerOffset + 26, true) + view.getUint16(pkl.headerOffset + 28, true);
  // Find data.pkl's central directory record: signature, then its name at +46.
  const nameBytes = new TextEncoder().encode(pklName);
  let crcAt: number | undefined;
  let cdStart = bytes.length;
  for (let at = bytes.length - 46; at >= 0; at--) {
    if (view.getUint32(at, true) !== 0x02014b50) continue;
    cdStart = at;
    const len = view.getUint16(at + 28, true);
    if (len === nameBytes.length && nameBytes.every((b, i) => bytes[at + 46 + i] === b)) crcAt = at + 16;
  }
  const header: [number, number] = pkl.method === 0 ? [start, start + pkl.compressedSize] : [0, 0];
  return { name, bytes, header, crcAt: pkl.method === 0 ? crcAt : undefined, tail: [cdStart, bytes.length] };
}

const KINDS = ['flip', 'truncate', 'header', 'header', 'tail', 'splice', 'insert', 'delete', 'length'] as const;

/** One mutated copy of `seed` and a word for what was done. */
export function mutate(rng: FuzzRng, seed: Seed, format: Format): { bytes: Uint8Array; kind: string } {
  const src = seed.bytes;
  let kind: string = rng.pick(KINDS);
  let out = src.slice();
  const region = (r: [number, number] | undefined): [number, number] => (r && r[1] > r[0] ? r : [0, src.length]);
  switch (kind) {
    case 'flip':
      for (let i = 1 + rng.int(8); i > 0; i--) out[rng.int(out.length)]! ^= 1 + rng.int(255);
      break;
    case 'truncate':
      out = out.slice(0, rng.int(out.length));
      break;
    case 'header': {
      const [a, b] = region(seed.header);
      for (let i = 1 + rng.int(4); i > 0; i--) {
        const at = a + rng.int(b - a);
        if (format === 'safetensors') out[at] = JSON_CHARS.charCodeAt(rng.int(JSON_CHARS.length));
        else out[at] = rng.next() < 0.5 ? rng.pick(PICKLE_OPS) : rng.int(256);
      }
      // Keep the zip's CRC right so the damage reaches the unpickler instead of the CRC check.
      if (seed.crcAt !== undefined) {
        new DataView(out.buffer).setUint32(seed.crcAt, crc32(out.subarray(a, b)), true);
      }
      break;
    }
    case 'tail': {
      const [a, b] = region(format === 'pth' ? seed.tail : seed.header);
      for (let i = 1 + rng.int(4); i > 0; i--) out[a + rng.int(b - a)] = rng.pick([0, 0xff, rng.int(256)]);
      break;
    }
    case 'length': {
      // Overwrite a 4-byte little-endian number somewhere structural with a hostile value.
      const [a, b] = region(format === 'pth' ? seed.tail : [0, 8]);
      const at = a + rng.int(Math.max(1, b - a - 4));
      const v = rng.pick([0, 1, 0xffffffff, 0x7fffffff, 0x80000000, rng.int(2 ** 32), src.length, src.length + 1]);
      if (at + 4 <= out.length) new DataView(out.buffer).setUint32(at, v, true);
      break;
    }
    case 'splice': {
      const len = 1 + rng.int(64);
      const from = rng.int(Math.max(1, src.length - len));
      out.set(src.subarray(from, from + len).slice(0, Math.max(0, out.length - 1)), rng.int(Math.max(1, out.length - len)));
      break;
    }
    case 'insert': {
      const at = rng.int(src.length + 1);
      const extra = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      out = new Uint8Array(src.length + extra.length);
      out.set(src.subarray(0, at));
      out.set(extra, at);
      out.set(src.subarray(at), at + extra.length);
      break;
    }
    case 'delete': {
      const at = rng.int(src.length);
      const n = 1 + rng.int(16);
      out = new Uint8Array([...src.subarray(0, at), ...src.subarray(at + n)]);
      break;
    }
    default:
      kind = 'none';
  }
  return { bytes: out, kind };
}

/** Parses as the format would be used: read, then touch every tensor. */
export function parse(format: Format, bytes: Uint8Array): void {
  if (format === 'safetensors') {
    const file = readSafetensors(bytes);
    for (const t of file.tensors.values()) toFloat32(t);
  } else {
    const obj = readPth(bytes);
    try {
      pthStateDict(obj);
    } catch (e) {
      if (!(e instanceof PthError)) throw e;
    }
  }
}

export interface FuzzResult {
  outcome: Outcome;
  kind: string;
  ms: number;
  message?: string;
}

export function fuzzOne(rng: FuzzRng, seed: Seed, format: Format, slowMs = 1000): FuzzResult {
  const { bytes, kind } = mutate(rng, seed, format);
  const t0 = performance.now();
  let outcome: Outcome = 'ok';
  let message: string | undefined;
  try {
    parse(format, bytes);
  } catch (e) {
    message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    outcome = e instanceof SafetensorsError ? 'SafetensorsError' : e instanceof PthError ? 'PthError' : 'other';
  }
  const ms = performance.now() - t0;
  if (ms > slowMs && outcome !== 'other') outcome = 'slow';
  return { outcome, kind, ms, message };
}

const fixtures = fileURLToPath(new URL('../test/fixtures/io/', import.meta.url));

/** The seed files: the committed fixtures plus a writer-made safetensors file. */
export function seeds(): Record<Format, Seed[]> {
  const read = (n: string): Uint8Array => new Uint8Array(readFileSync(fixtures + n));
  const rng = new FuzzRng(99);
  const written = writeSafetensors(
    [
      { name: 'a', shape: [3, 5], data: Float32Array.from({ length: 15 }, () => rng.next()) },
      { name: 'b', dtype: 'F16', shape: [4], data: Float32Array.from([1, 2, 3, 4]) },
      { name: 'c', shape: [], data: BigInt64Array.from([7n]) },
      { name: 'd', shape: [0], data: new Int8Array(0) },
    ],
    { format: 'pt' },
  );
  return {
    safetensors: [safetensorsSeed('tensors.safetensors', read('tensors.safetensors')), safetensorsSeed('written', written)],
    pth: ['checkpoint.pth', 'checkpoint-proto4.pth', 'checkpoint-zip64-deflate.pth'].map((n) => pthSeed(n, read(n))),
  };
}

export function runFuzz(format: Format, count: number, seed: number, slowMs = 1000): { counts: Record<Outcome, number>; failures: FuzzResult[]; maxMs: number } {
  const rng = new FuzzRng(seed);
  const pool = seeds()[format];
  const counts: Record<Outcome, number> = { ok: 0, SafetensorsError: 0, PthError: 0, other: 0, slow: 0 };
  const failures: FuzzResult[] = [];
  let maxMs = 0;
  for (let i = 0; i < count; i++) {
    const r = fuzzOne(rng, pool[i % pool.length]!, format, slowMs);
    counts[r.outcome]++;
    maxMs = Math.max(maxMs, r.ms);
    if (r.outcome === 'other' || r.outcome === 'slow') failures.push({ ...r, message: `${pool[i % pool.length]!.name} #${i}: ${r.message}` });
  }
  return { counts, failures, maxMs };
}

function main(): void {
  const argv = process.argv.slice(2);
  const opt = (name: string, fallback: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const count = opt('--count', 10000);
  const seed = opt('--seed', 1);
  let bad = 0;
  for (const format of ['safetensors', 'pth'] as const) {
    const t0 = performance.now();
    const { counts, failures, maxMs } = runFuzz(format, count, seed);
    const outcomes = Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`${format}: ${count} mutated files in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${outcomes}; slowest parse ${maxMs.toFixed(1)} ms`);
    for (const f of failures.slice(0, 20)) console.log(`  ${f.outcome} (${f.kind}, ${f.ms.toFixed(0)} ms): ${f.message}`);
    bad += failures.length;
  }
  process.exit(bad ? 1 : 0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
