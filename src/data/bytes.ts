/**
 * Byte streams: a shard is read as an async sequence of chunks (a file, an HTTP body, a
 * browser File's stream), never as one buffer. `ByteReader` hands out exact-size pieces of
 * such a stream; `gunzip` inflates one as it flows.
 */
import { Gunzip } from 'fflate';

export type ByteStream = AsyncIterable<Uint8Array>;

/** Reads exact-size pieces from a chunk stream, copying only when a piece spans chunks. */
export class ByteReader {
  private iterator: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private done = false;
  /** Bytes handed out (or skipped) so far. */
  position = 0;

  constructor(stream: ByteStream) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or fewer if the stream ends first (the caller decides what that means). */
  async read(n: number): Promise<Uint8Array> {
    if (this.offset + n <= this.chunk.length) {
      const out = this.chunk.subarray(this.offset, this.offset + n);
      this.offset += n;
      this.position += n;
      return out;
    }
    // Gather the pieces first and copy once at the end: `n` comes from a (possibly corrupt)
    // header, so allocating it up front would let a small shard claim hundreds of MiB.
    const pieces: Uint8Array[] = [];
    let filled = 0;
    while (filled < n) {
      if (this.offset >= this.chunk.length && !(await this.pull())) break;
      const take = Math.min(n - filled, this.chunk.length - this.offset);
      pieces.push(this.chunk.subarray(this.offset, this.offset + take));
      this.offset += take;
      filled += take;
    }
    this.position += filled;
    const out = new Uint8Array(filled);
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Skips `n` bytes; returns how many were there. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.offset >= this.chunk.length && !(await this.pull())) break;
      const take = Math.min(left, this.chunk.length - this.offset);
      this.offset += take;
      left -= take;
    }
    this.position += n - left;
    return n - left;
  }

  /** Stops the underlying stream (closes a file or an HTTP connection). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }

  private async pull(): Promise<boolean> {
    while (!this.done) {
      const r = await this.iterator.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      if (r.value.length > 0) {
        this.chunk = r.value;
        this.offset = 0;
        return true;
      }
    }
    return false;
  }
}

/** Inflates a gzip stream chunk by chunk (fflate's streaming Gunzip; multi-member files too). */
export async function* gunzip(stream: ByteStream): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const inflater = new Gunzip((data) => {
    out.push(data);
  });
  for await (const chunk of stream) {
    inflater.push(chunk, false);
    while (out.length) yield out.shift()!;
  }
  // Throws 'unexpected EOF' on a truncated gzip stream; the tar reader turns it into a shard error.
  inflater.push(new Uint8Array(0), true);
  while (out.length) yield out.shift()!;
}

/** A stream over one in-memory buffer, in chunks (tests, small fixtures). */
export async function* bytesOf(data: Uint8Array, chunkSize = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, Math.min(data.length, i + chunkSize));
}
