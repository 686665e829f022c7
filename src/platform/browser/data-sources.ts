/**
 * Shards from what a browser user picks: shard files (`.tar`, `.tar.gz`, `.parquet`), a folder
 * of images (ImageFolder or flat; from `<input webkitdirectory>` or the File System Access
 * picker), or URL patterns (src/data/sources.ts). Files are read as streams, never whole.
 */
import type { AsyncBuffer } from 'hyparquet';
import type { ByteStream } from '../../data/bytes.ts';
import { imageFolder, type FileRef } from '../../data/folder.ts';
import { ParquetShard } from '../../data/parquet.ts';
import { shardKind } from '../../data/sources.ts';
import type { Shard } from '../../data/types.ts';
import { TarShard } from '../../data/webdataset.ts';

export interface BrowserDataset {
  shards: Shard[];
  classes: string[];
}

/** A Blob's bytes as a chunk stream. */
export async function* blobBytes(blob: Blob): ByteStream {
  const reader = blob.stream().getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Random access to a Blob for parquet. */
export function blobAsyncBuffer(blob: Blob): AsyncBuffer {
  return { byteLength: blob.size, slice: (start, end) => blob.slice(start, end).arrayBuffer() };
}

function fileShard(file: File): Shard {
  const kind = shardKind(file.name);
  if (kind === 'parquet') return new ParquetShard(file.name, async () => blobAsyncBuffer(file));
  return new TarShard(file.name, () => blobBytes(file), kind === 'tar.gz');
}

/** The path of a picked file below the picked folder (webkitRelativePath starts with the folder's name). */
function relativePath(file: File & { relativePath?: string }): string {
  const rel = file.relativePath ?? file.webkitRelativePath ?? '';
  if (!rel) return file.name;
  const slash = rel.indexOf('/');
  return slash >= 0 ? rel.slice(slash + 1) : rel;
}

/** Shards from picked files: shard files as they are, images as an image folder. */
export function browserShards(files: Iterable<File>, opts: { name?: string; filesPerShard?: number } = {}): BrowserDataset {
  const shardFiles: File[] = [];
  const images: FileRef[] = [];
  for (const f of files) {
    if (shardKind(f.name)) shardFiles.push(f);
    else images.push({ path: relativePath(f), read: async () => new Uint8Array(await f.arrayBuffer()) });
  }
  shardFiles.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shards = shardFiles.map(fileShard);
  let classes: string[] = [];
  if (images.length > 0) {
    const ds = imageFolder(images, { name: opts.name ?? 'folder', filesPerShard: opts.filesPerShard ?? 1000 });
    shards.push(...ds.shards);
    classes = ds.classes;
  }
  return { shards, classes };
}

interface DirectoryHandle {
  name: string;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string; getFile?(): Promise<File> } & DirectoryHandle>;
}

/**
 * Files below a File System Access directory handle (from `showDirectoryPicker()`), each with
 * `relativePath` set as `<folder>/<path>` like webkitRelativePath.
 */
export async function filesOfDirectory(dir: DirectoryHandle, prefix = dir.name): Promise<File[]> {
  const out: File[] = [];
  for await (const entry of dir.values()) {
    const path = `${prefix}/${entry.name}`;
    if (entry.kind === 'directory') out.push(...(await filesOfDirectory(entry, path)));
    else if (entry.getFile) {
      const file = await entry.getFile();
      Object.defineProperty(file, 'relativePath', { value: path });
      out.push(file);
    }
  }
  return out;
}

/** Asks the user for a folder (File System Access API where present, else a webkitdirectory input). */
export async function pickFolder(): Promise<File[]> {
  const picker = (globalThis as unknown as { showDirectoryPicker?: () => Promise<DirectoryHandle> }).showDirectoryPicker;
  if (picker) return filesOfDirectory(await picker());
  return new Promise((resolve) => {
    const input = document.createElement('input');
    input.type = 'file';
    input.webkitdirectory = true;
    input.multiple = true;
    input.addEventListener('change', () => resolve([...(input.files ?? [])]));
    input.click();
  });
}
