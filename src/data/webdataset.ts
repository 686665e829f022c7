/**
 * WebDataset: a tar shard whose consecutive members sharing a key form one sample, e.g.
 * `train/n01440764_10026.jpg` + `train/n01440764_10026.cls` (timm/imagenet-1k-wds). The key
 * is the path up to the first dot of its last component; the rest is the extension.
 */
import { gunzip, type ByteStream } from './bytes.ts';
import { readTar, ShardError } from './tar.ts';
import { IMAGE_EXTENSIONS, type DataMetrics, type Sample, type Shard } from './types.ts';

/** Splits a member path into WebDataset key and extension; null when it has no extension. */
export function splitKey(path: string): { key: string; ext: string } | null {
  const slash = path.lastIndexOf('/');
  const dot = path.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === path.length - 1) return null;
  return { key: path.slice(0, dot), ext: path.slice(dot + 1).toLowerCase() };
}

const text = new TextDecoder();

/** Builds a sample from one key's members; null when none of them is an image. */
function toSample(key: string, shard: string, index: number, files: Map<string, Uint8Array>): Sample | null {
  let image: Uint8Array | null = null;
  let format = '';
  let label = -1;
  let json: string | null = null;
  for (const [ext, data] of files) {
    // Multi-part extensions ("seg.png", "input.jpg") are matched by their last part.
    const last = ext.slice(ext.lastIndexOf('.') + 1);
    if (!image && IMAGE_EXTENSIONS.has(last)) {
      image = data;
      format = last === 'jpeg' ? 'jpg' : last;
    } else if (ext === 'cls' || ext === 'cls2' || ext === 'label' || ext === 'class') {
      const v = parseInt(text.decode(data).trim(), 10);
      if (Number.isFinite(v) && label < 0) label = v;
    } else if (ext === 'json') {
      json = text.decode(data);
    }
  }
  return image ? { key, shard, index, image, format, label, json } : null;
}

/**
 * Groups a tar stream's members into samples. Members that belong to no sample (directories,
 * links, names without an extension, keys without an image) are counted in `ignoredEntries`.
 * If the archive breaks, the sample being gathered is dropped (it may lack members) unless
 * the break lies in the data of a member whose header already named the next key, and the
 * `ShardError` propagates after every complete sample before it.
 */
export async function* webDatasetSamples(
  stream: ByteStream,
  shard: string,
  start: number,
  metrics: DataMetrics,
): AsyncGenerator<Sample> {
  let key: string | null = null;
  let files = new Map<string, Uint8Array>();
  let index = 0;
  const finish = (): Sample | null => {
    if (key === null) return null;
    const sample = toSample(key, shard, index, files);
    if (sample) index++;
    else metrics.ignoredEntries += files.size;
    key = null;
    files = new Map();
    return sample;
  };
  try {
    for await (const entry of readTar(stream, shard)) {
      const split = entry.type === 'file' ? splitKey(entry.name) : null;
      if (!split) {
        metrics.ignoredEntries++;
        continue;
      }
      if (split.key !== key) {
        const done = finish();
        if (done && done.index >= start) yield done;
        key = split.key;
      }
      files.set(split.ext, entry.data);
    }
  } catch (err) {
    // The archive broke in the data of a member whose header names a new key: the sample
    // gathered so far is complete, so it is delivered before the error.
    const next = err instanceof ShardError && err.entry ? splitKey(err.entry) : null;
    if (next && next.key !== key) {
      const done = finish();
      if (done && done.index >= start) yield done;
    }
    throw err;
  }
  const done = finish();
  if (done && done.index >= start) yield done;
}

/** A `.tar` or `.tar.gz` shard read from a chunk stream that `open()` starts afresh each time. */
export class TarShard implements Shard {
  constructor(
    readonly name: string,
    private open: (metrics: DataMetrics) => ByteStream,
    private gzipped = /\.(tar\.gz|tgz)$/i.test(name),
  ) {}

  samples(start: number, metrics: DataMetrics): AsyncIterable<Sample> {
    const raw = this.open(metrics);
    return webDatasetSamples(this.gzipped ? gunzip(raw) : raw, this.name, start, metrics);
  }
}

export { ShardError };
