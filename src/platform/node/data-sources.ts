/**
 * Shards from what a Node user names: URL patterns, shard files and patterns of them
 * (`data/train-{0000..0099}.tar`), a folder of shards, or an image folder (ImageFolder or flat).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { expandBraces } from '../../data/braces.ts';
import { imageFolder, type FileRef } from '../../data/folder.ts';
import type { HttpOptions } from '../../data/http.ts';
import { ParquetShard } from '../../data/parquet.ts';
import { isUrl, shardKind, urlShards } from '../../data/sources.ts';
import type { Shard } from '../../data/types.ts';
import { TarShard } from '../../data/webdataset.ts';
import { fileAsyncBuffer, fileBytes } from './data-files.ts';

export interface NodeSourceOptions {
  /** For URLs: headers (Authorization), retries, backoff. */
  http?: HttpOptions;
  /** For image folders: files per shard (default 1000). */
  filesPerShard?: number;
}

export interface NodeDataset {
  shards: Shard[];
  /** Class names for an ImageFolder; empty otherwise. */
  classes: string[];
}

function fileShard(path: string): Shard {
  const kind = shardKind(path);
  const name = basename(path);
  if (kind === 'parquet') return new ParquetShard(name, () => fileAsyncBuffer(path));
  if (kind === null) throw new Error(`${path}: not a .tar, .tar.gz or .parquet shard`);
  return new TarShard(name, () => fileBytes(path), kind === 'tar.gz');
}

async function walk(dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, out);
    else if (entry.isFile()) out.push(path);
  }
}

async function folderDataset(dir: string, opts: NodeSourceOptions): Promise<NodeDataset> {
  const entries = await readdir(dir, { withFileTypes: true });
  const shardFiles = entries.filter((e) => e.isFile() && shardKind(e.name)).map((e) => join(dir, e.name));
  if (shardFiles.length > 0) return { shards: shardFiles.sort().map(fileShard), classes: [] };
  const paths: string[] = [];
  await walk(dir, paths);
  const files: FileRef[] = paths.map((p) => ({
    path: relative(dir, p).split(sep).join('/'),
    read: async () => new Uint8Array(await readFile(p)),
  }));
  const ds = imageFolder(files, { name: basename(dir), filesPerShard: opts.filesPerShard ?? 1000 });
  if (ds.images === 0) throw new Error(`${dir}: no shards (.tar, .tar.gz, .parquet) and no images found`);
  return { shards: ds.shards, classes: ds.classes };
}

/** Resolves one or more specs (each may hold brace patterns) into shards, in order. */
export async function nodeShards(specs: string | string[], opts: NodeSourceOptions = {}): Promise<NodeDataset> {
  const shards: Shard[] = [];
  let classes: string[] = [];
  for (const spec of Array.isArray(specs) ? specs : [specs]) {
    if (isUrl(spec)) {
      shards.push(...urlShards(spec, opts.http));
      continue;
    }
    for (const path of expandBraces(spec)) {
      const info = await stat(path).catch(() => null);
      if (!info) throw new Error(`${path}: no such file or folder`);
      if (info.isDirectory()) {
        const ds = await folderDataset(path, opts);
        shards.push(...ds.shards);
        if (ds.classes.length) classes = ds.classes;
      } else {
        shards.push(fileShard(path));
      }
    }
  }
  return { shards, classes };
}
