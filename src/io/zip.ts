/**
 * A zip archive reader over bytes in memory, enough for torch.save files: the central
 * directory (zip64 too), stored and deflated entries.
 *
 * Every number the archive claims is checked against the file before it is used: the
 * directory and each entry must lie inside the file, a stored entry's size is its compressed
 * size, a deflated entry may claim at most what deflate can expand its bytes to (1032x) and at
 * most `maxEntryBytes`, and inflating stops as soon as the output passes the claimed size.
 * CRC-32 is checked on every entry read. Any problem is a `ZipError` naming the entry.
 * Stored entries are returned as views into the archive's bytes (no copy).
 */
import { Inflate } from 'fflate';

export class ZipError extends Error {
  constructor(message: string) {
    super(`zip: ${message}`);
    this.name = 'ZipError';
  }
}

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the entry's local header in the archive. */
  headerOffset: number;
}

export interface ZipOptions {
  /** Largest uncompressed entry accepted (default 4 GiB). */
  maxEntryBytes?: number;
  /** Most entries accepted (default 1,000,000). */
  maxEntries?: number;
  /** Check each entry's CRC-32 when it is read (default true). */
  verifyCrc?: boolean;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
/** Deflate's best case is ~1032:1 (258-byte matches in ~2 bits); anything more is a lie. */
const MAX_DEFLATE_RATIO = 1032;
const INFLATE_CHUNK = 1 << 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class ZipReader {
  /** Entries by name, in central-directory order. */
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;
  private readonly maxEntryBytes: number;
  private readonly verifyCrc: boolean;

  constructor(
    private readonly bytes: Uint8Array,
    opts: ZipOptions = {},
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.maxEntryBytes = opts.maxEntryBytes ?? 4 * 2 ** 30;
    this.verifyCrc = opts.verifyCrc ?? true;
    this.readDirectory(opts.maxEntries ?? 1_000_000);
  }

  private u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  /** A u64 that must be a safe integer (no real archive in memory comes close). */
  private u64(at: number, what: string): number {
    const v = this.u32(at + 4) * 2 ** 32 + this.u32(at);
    if (!Number.isSafeInteger(v)) throw new ZipError(`${what} ${v} is out of range`);
    return v;
  }
  /** Checks that [at, at + n) lies inside the archive. */
  private within(at: number, n: number, what: string): void {
    if (at < 0 || n < 0 || at + n > this.bytes.length) {
      throw new ZipError(`${what} (bytes ${at}..${at + n}) lies outside the ${this.bytes.length}-byte file`);
    }
  }

  private findEnd(): number {
    const len = this.bytes.length;
    // The end record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
    for (let at = len - 22; at >= Math.max(0, len - 22 - 0xffff); at--) {
      if (this.u32(at) === EOCD && at + 22 + this.u16(at + 20) <= len) return at;
    }
    throw new ZipError('no end-of-central-directory record: not a zip archive, or truncated');
  }

  private readDirectory(maxEntries: number): void {
    if (this.bytes.length < 22) throw new ZipError(`file is ${this.bytes.length} bytes, too short for a zip archive`);
    const end = this.findEnd();
    let count = this.u16(end + 10);
    let size = this.u32(end + 12);
    let offset = this.u32(end + 16);
    if (this.u16(end + 4) !== 0 || this.u16(end + 6) !== 0) throw new ZipError('multi-disk archives are not supported');
    // A zip64 locator just before the end record points at the zip64 end record, whose
    // counts and offsets replace the 16/32-bit ones (which may be 0xffff.. placeholders).
    if (end >= 20 && this.u32(end - 20) === ZIP64_LOCATOR) {
      const at = this.u64(end - 12, 'zip64 end record offset');
      this.within(at, 56, 'zip64 end record');
      if (this.u32(at) !== ZIP64_EOCD) throw new ZipError('zip64 locator does not point at a zip64 end record');
      count = this.u64(at + 32, 'zip64 entry count');
      size = this.u64(at + 40, 'zip64 central directory size');
      offset = this.u64(at + 48, 'zip64 central directory offset');
    }
    if (count > maxEntries) throw new ZipError(`archive claims ${count} entries, more than the limit of ${maxEntries}`);
    this.within(offset, size, 'central directory');
    // Each directory record is at least 46 bytes: a count the directory cannot hold is a lie.
    if (count * 46 > size) throw new ZipError(`central directory of ${size} bytes cannot hold ${count} entries`);

    let at = offset;
    const stop = offset + size;
    for (let i = 0; i < count; i++) {
      if (at + 46 > stop || this.u32(at) !== CENTRAL) throw new ZipError(`central directory record ${i} is damaged`);
      const flags = this.u16(at + 8);
      const method = this.u16(at + 10);
      const crc = this.u32(at + 16);
      let compressedSize = this.u32(at + 20);
      let entrySize = this.u32(at + 24);
      const nameLength = this.u16(at + 28);
      const extraLength = this.u16(at + 30);
      const commentLength = this.u16(at + 32);
      let headerOffset = this.u32(at + 42);
      const next = at + 46 + nameLength + extraLength + commentLength;
      if (next > stop) throw new ZipError(`central directory record ${i} runs past the directory`);
      const nameBytes = this.bytes.subarray(at + 46, at + 46 + nameLength);
      let name: string;
      try {
        name = flags & 0x800 ? utf8.decode(nameBytes) : latin1.decode(nameBytes);
      } catch {
        throw new ZipError(`central directory record ${i}: name is not valid UTF-8`);
      }
      // Zip64 extended information: the 8-byte values follow in this order, present only
      // for the fields whose 32-bit value is the 0xffffffff placeholder.
      let x = at + 46 + nameLength;
      const xEnd = x + extraLength;
      while (x + 4 <= xEnd) {
        const id = this.u16(x);
        const len = this.u16(x + 2);
        if (x + 4 + len > xEnd) throw new ZipError(`entry '${name}': extra field runs past its record`);
        if (id === 0x0001) {
          let f = x + 4;
          const take = (what: string): number => {
            if (f + 8 > x + 4 + len) throw new ZipError(`entry '${name}': zip64 extra field too short`);
            const v = this.u64(f, `entry '${name}': ${what}`);
            f += 8;
            return v;
          };
          if (entrySize === 0xffffffff) entrySize = take('size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (headerOffset === 0xffffffff) headerOffset = take('header offset');
        }
        x += 4 + len;
      }
      if (flags & 1) throw new ZipError(`entry '${name}' is encrypted`);
      if (method !== 0 && method !== 8) throw new ZipError(`entry '${name}' uses compression method ${method} (only stored and deflate)`);
      this.within(headerOffset, 30, `entry '${name}' local header`);
      this.within(headerOffset, compressedSize, `entry '${name}' data`);
      if (method === 0 && compressedSize !== entrySize) {
        throw new ZipError(`stored entry '${name}' claims ${entrySize} bytes but holds ${compressedSize}`);
      }
      if (entrySize > this.maxEntryBytes) {
        throw new ZipError(`entry '${name}' claims ${entrySize} bytes, more than the limit of ${this.maxEntryBytes}`);
      }
      if (method === 8 && entrySize > compressedSize * MAX_DEFLATE_RATIO + 64) {
        throw new ZipError(`entry '${name}' claims ${entrySize} bytes, more than its ${compressedSize} deflated bytes can hold`);
      }
      if (this.entries.has(name)) throw new ZipError(`entry '${name}' appears twice`);
      this.entries.set(name, { name, method, compressedSize, size: entrySize, crc32: crc, headerOffset });
      at = next;
    }
  }

  /** The entry's bytes: a view for stored entries, a fresh array for deflated ones. */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(`no entry '${name}'`);
    const h = e.headerOffset;
    if (this.u32(h) !== LOCAL) throw new ZipError(`entry '${name}': no local header at offset ${h}`);
    // The data follows the local header, whose name and extra lengths can differ from the
    // directory's (torch pads its entries to 64 bytes with a local extra field).
    const start = h + 30 + this.u16(h + 26) + this.u16(h + 28);
    this.within(start, e.compressedSize, `entry '${name}' data`);
    const raw = this.bytes.subarray(start, start + e.compressedSize);
    const data = e.method === 0 ? raw : inflate(raw, e.size, name);
    if (this.verifyCrc && crc32(data) !== e.crc32) throw new ZipError(`entry '${name}' fails its CRC-32 check (corrupt)`);
    return data;
  }
}

/**
 * Inflates exactly `size` bytes, stopping early if the stream produces more. The output
 * buffer grows with what really comes out, so a false claim costs no allocation.
 */
function inflate(raw: Uint8Array, size: number, name: string): Uint8Array {
  let out = new Uint8Array(Math.min(size, Math.max(1 << 16, raw.length * 4)));
  let filled = 0;
  let done = false;
  const stream = new Inflate((chunk, final) => {
    if (filled + chunk.length > size) throw new ZipError(`entry '${name}' inflates to more than its ${size} bytes`);
    if (filled + chunk.length > out.length) {
      const grown = new Uint8Array(Math.min(size, Math.max(out.length * 2, filled + chunk.length)));
      grown.set(out.subarray(0, filled));
      out = grown;
    }
    out.set(chunk, filled);
    filled += chunk.length;
    if (final) done = true;
  });
  try {
    for (let at = 0; at < raw.length && !done; at += INFLATE_CHUNK) {
      stream.push(raw.subarray(at, at + INFLATE_CHUNK), at + INFLATE_CHUNK >= raw.length);
    }
  } catch (e) {
    if (e instanceof ZipError) throw e;
    throw new ZipError(`entry '${name}': bad deflate data (${(e as Error).message})`);
  }
  if (!done || filled !== size) {
    throw new ZipError(`entry '${name}' inflates to ${filled} bytes${done ? '' : ' (stream incomplete)'}, not ${size}`);
  }
  return out;
}
