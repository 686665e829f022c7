/** Node file access for the data pipeline: chunked reads and random access (parquet). */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { ByteStream } from '../../data/bytes.ts';
import type { AsyncBuffer } from 'hyparquet';

/** The bytes of a file from `start`, in 256 KiB chunks. */
export async function* fileBytes(path: string, start = 0): ByteStream {
  for await (const chunk of createReadStream(path, { start, highWaterMark: 256 * 1024 })) {
    yield chunk as Buffer;
  }
}

/** Random access to a file for hyparquet (footer first, then one row group at a time). */
export async function fileAsyncBuffer(path: string): Promise<AsyncBuffer> {
  const { size } = await stat(path);
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? size, size);
      const out = new Uint8Array(Math.max(0, stop - start));
      const handle = await open(path, 'r');
      try {
        let done = 0;
        while (done < out.length) {
          const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      return out.buffer;
    },
  };
}
