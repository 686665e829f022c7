/**
 * A streaming tar reader: ustar, pax extended headers (long names, large sizes) and GNU
 * long-name/long-link entries, over a chunk stream. It holds one entry's data at a time,
 * never the archive.
 *
 * A tar file is a sequence of 512-byte header blocks, each followed by the entry's data
 * padded to 512 bytes, and ends with two zero blocks. A pax 'x' entry (or GNU 'L') carries
 * attributes of the entry that follows it; 'g' carries global attributes.
 *
 * Anything that breaks this structure (the stream ends inside an entry or before the end
 * blocks, a header checksum does not match) throws a `ShardError` naming the shard; the
 * entries before it have already been yielded.
 */
import { ByteReader, type ByteStream } from './bytes.ts';

export type TarEntryType = 'file' | 'directory' | 'other';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** The file's bytes; empty for directories and other non-file entries. */
  data: Uint8Array;
}

/** A shard that could not be read to its end. The message names the shard. */
export class ShardError extends Error {
  constructor(
    readonly shard: string,
    message: string,
  ) {
    super(`shard ${shard}: ${message}`);
    this.name = 'ShardError';
  }
  /**
   * The member whose header was read intact but whose data was cut or broken, if that is
   * where the archive failed: its name tells the grouping that the sample before is complete.
   */
  entry?: string;
}

const BLOCK = 512;
/** Entries larger than this are taken as a corrupt header rather than buffered. */
const MAX_ENTRY_BYTES = 512 * 2 ** 20;

const utf8 = new TextDecoder();

function cString(block: Uint8Array, start: number, length: number): string {
  let end = start;
  while (end < start + length && block[end] !== 0) end++;
  return utf8.decode(block.subarray(start, end));
}

/** A numeric header field: octal text, or GNU base-256 when the top bit is set. */
function number(block: Uint8Array, start: number, length: number): number {
  if (block[start]! & 0x80) {
    let v = block[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + block[i]!;
    return v;
  }
  const text = cString(block, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(block: Uint8Array): boolean {
  let unsigned = 0;
  for (let i = 0; i < BLOCK; i++) unsigned += i >= 148 && i < 156 ? 0x20 : block[i]!;
  const stored = number(block, 148, 8);
  // Some old writers summed signed bytes; accept either.
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) signed += i >= 148 && i < 156 ? 0x20 : (block[i]! << 24) >> 24;
  return stored === unsigned || stored === signed;
}

function isZero(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Parses pax records: "<length> <key>=<value>\n", length counting the whole record. */
export function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    let space = pos;
    while (space < data.length && data[space] !== 0x20) space++;
    const length = parseInt(utf8.decode(data.subarray(pos, space)), 10);
    if (!(length > 0) || pos + length > data.length) break;
    const record = utf8.decode(data.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}

/** Yields the entries of the tar archive in `stream`; `shard` names it in errors. */
export async function* readTar(stream: ByteStream, shard: string): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(stream);
  const readExact = async (n: number, what: string): Promise<Uint8Array> => {
    let bytes: Uint8Array;
    try {
      bytes = await reader.read(n);
    } catch (err) {
      throw err instanceof ShardError ? err : new ShardError(shard, (err as Error).message);
    }
    if (bytes.length < n) throw new ShardError(shard, `truncated in ${what} at byte ${reader.position}`);
    return bytes;
  };
  const skipExact = async (n: number, what: string): Promise<void> => {
    let got: number;
    try {
      got = await reader.skip(n);
    } catch (err) {
      throw err instanceof ShardError ? err : new ShardError(shard, (err as Error).message);
    }
    if (got < n) throw new ShardError(shard, `truncated in ${what} at byte ${reader.position}`);
  };
  const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

  let globalPax = new Map<string, string>();
  let nextPax = new Map<string, string>();
  let gnuLongName: string | null = null;
  try {
    for (;;) {
      const block = await readExact(BLOCK, 'a header');
      if (isZero(block)) {
        // End of archive (a second zero block should follow; some writers stop after one).
        return;
      }
      if (!checksumOk(block)) throw new ShardError(shard, `bad header checksum at byte ${reader.position - BLOCK}`);
      const typeflag = String.fromCharCode(block[156]!);
      const magic = cString(block, 257, 6);
      let size = number(block, 124, 12);
      const pax = new Map([...globalPax, ...nextPax]);
      if (pax.has('size')) size = Number(pax.get('size'));
      if (!(size >= 0) || size > MAX_ENTRY_BYTES) throw new ShardError(shard, `implausible entry size ${size}`);

      // Entries that describe the next entry (or all later ones).
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        const data = await readExact(size, 'an extended header');
        await skipExact(padding(size), 'padding');
        if (typeflag === 'x') nextPax = parsePax(data);
        else if (typeflag === 'g') globalPax = new Map([...globalPax, ...parsePax(data)]);
        else if (typeflag === 'L') gnuLongName = cString(data, 0, data.length);
        continue; // 'K' (long link target) is not needed: links are skipped.
      }

      let name = cString(block, 0, 100);
      // The ustar prefix field; GNU's old format uses those bytes for other things.
      if (magic === 'ustar' && block[263] === 0x30 && block[264] === 0x30) {
        const prefix = cString(block, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (gnuLongName !== null) name = gnuLongName;
      if (pax.has('path')) name = pax.get('path')!;
      nextPax = new Map();
      gnuLongName = null;

      const type: TarEntryType =
        typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
      if (type === 'file') {
        let data: Uint8Array;
        try {
          data = await readExact(size, `the data of ${name}`);
          await skipExact(padding(size), 'padding');
        } catch (err) {
          if (err instanceof ShardError) err.entry = name;
          throw err;
        }
        // A fresh copy when the reader handed out a view of its chunk, so callers may keep it.
        yield { name, type, data: data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice() };
      } else {
        // Links, devices and FIFOs have no data; a directory's size is 0; GNU sparse files are skipped.
        await skipExact(size + padding(size), `the data of ${name}`);
        yield { name, type, data: new Uint8Array(0) };
      }
    }
  } finally {
    await reader.close();
  }
}
