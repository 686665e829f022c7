/** Types shared by the data pipeline's sources, order, decode and loader. */

/** One training example before decoding. */
export interface Sample {
  /** The WebDataset key (`train/n01440764_10026`), a file path, or `<shard>#<row>`. */
  key: string;
  /** The shard it came from (its name). */
  shard: string;
  /**
   * Its position in the shard, in the shard's own unit: the sample's ordinal in a tar, the
   * row in a parquet file, the file's ordinal in a folder shard. Increases along the shard.
   */
  index: number;
  /** Encoded image bytes (JPEG, PNG, WebP...). */
  image: Uint8Array;
  /** The image's extension, lower case (`jpg`, `png`, `webp`). */
  format: string;
  /** Class index from `.cls`, the class folder, or a label column; -1 when there is none. */
  label: number;
  /** The text of a `.json` beside the image, if any. */
  json: string | null;
}

/** Counters for the metrics panel and the training log. */
export interface DataMetrics {
  /** Samples delivered in batches. */
  samples: number;
  /** Samples whose image failed to decode (skipped). */
  skippedDecode: number;
  /** Shards ended early by an error (truncated, corrupt, unreachable). */
  skippedShards: number;
  /** Archive members that are not part of a sample (directories, stray files, groups without an image). */
  ignoredEntries: number;
  /** Network retries. */
  retries: number;
  /** Milliseconds `next()` spent waiting for data, in total. */
  waitMs: number;
  /** The last few error messages (each names its shard or sample). */
  errors: string[];
}

export function newMetrics(): DataMetrics {
  return { samples: 0, skippedDecode: 0, skippedShards: 0, ignoredEntries: 0, retries: 0, waitMs: 0, errors: [] };
}

const MAX_ERRORS = 20;

export function noteError(metrics: DataMetrics, message: string): void {
  metrics.errors.push(message);
  if (metrics.errors.length > MAX_ERRORS) metrics.errors.shift();
}

/**
 * A shard: a unit the epoch's order shuffles. `samples(start)` streams its samples in a fixed
 * order, beginning with the first whose `index` is at least `start`; it throws a `ShardError` naming the shard
 * if the shard cannot be read to its end (the samples before have been yielded).
 */
export interface Shard {
  readonly name: string;
  samples(start: number, metrics: DataMetrics): AsyncIterable<Sample>;
}

/** Extensions read as images (by both decoders). */
export const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'bmp', 'avif']);
