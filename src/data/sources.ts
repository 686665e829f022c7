/**
 * Shards from URLs (any platform with fetch) and the shared rules for naming shard kinds.
 * Platform code adds local files: src/platform/node/data-sources.ts (paths, folders) and
 * src/platform/browser/data-sources.ts (File objects, a folder picker).
 */
import { expandBraces } from './braces.ts';
import { httpAsyncBuffer, httpBytes, type HttpOptions } from './http.ts';
import { ParquetShard } from './parquet.ts';
import type { Shard } from './types.ts';
import { TarShard } from './webdataset.ts';

export type ShardKind = 'tar' | 'tar.gz' | 'parquet';

/** The kind of shard a file name or URL names, from its extension (a query string is ignored). */
export function shardKind(nameOrUrl: string): ShardKind | null {
  const path = nameOrUrl.replace(/[?#].*$/, '').toLowerCase();
  if (path.endsWith('.tar')) return 'tar';
  if (path.endsWith('.tar.gz') || path.endsWith('.tgz')) return 'tar.gz';
  if (path.endsWith('.parquet')) return 'parquet';
  return null;
}

export function isUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/** Shards at the URLs of a brace pattern, e.g. `https://host/imagenet1k-train-{0000..1023}.tar`. */
export function urlShards(pattern: string, opts: HttpOptions = {}): Shard[] {
  return expandBraces(pattern).map((url) => {
    const kind = shardKind(url);
    if (kind === 'parquet') return new ParquetShard(url, (metrics) => httpAsyncBuffer(url, opts, metrics));
    if (kind === null) throw new Error(`${url}: not a .tar, .tar.gz or .parquet shard`);
    return new TarShard(url, (metrics) => httpBytes(url, opts, metrics), kind === 'tar.gz');
  });
}
