/**
 * Hugging Face parquet shards: an image column of `{bytes, path}` structs and, usually, an
 * integer `label` column. Read one row group at a time (hyparquet), so memory holds one row
 * group's images, not the shard. Snappy-compressed files read out of the box; zstd and
 * brotli need hyparquet-compressors, which is not bundled.
 */
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { ShardError } from './tar.ts';
import { IMAGE_EXTENSIONS, type DataMetrics, type Sample, type Shard } from './types.ts';

const LABEL_COLUMNS = ['label', 'cls', 'labels', 'class'];

interface Columns {
  image: string;
  label: string | null;
}

/** The image column (a struct with a `bytes` child) and the label column of a file. */
function findColumns(meta: FileMetaData, shard: string): Columns {
  const schema = meta.schema;
  let image: string | null = null;
  let label: string | null = null;
  // Walk the top-level fields (schema[0] is the root; children follow depth-first).
  let i = 1;
  while (i < schema.length) {
    const el = schema[i]!;
    const children = el.num_children ?? 0;
    if (children > 0) {
      const kids = schema.slice(i + 1, i + 1 + children).map((k) => k.name);
      if (!image && kids.includes('bytes')) image = el.name;
      i += 1 + subtreeSize(schema, i + 1, children);
    } else {
      if (!label && LABEL_COLUMNS.includes(el.name.toLowerCase()) && el.type?.startsWith('INT')) label = el.name;
      i++;
    }
  }
  if (!image) throw new ShardError(shard, 'no image column (a struct with a `bytes` field) in this parquet file');
  return { image, label };
}

function subtreeSize(schema: FileMetaData['schema'], start: number, children: number): number {
  let n = 0;
  let pos = start;
  for (let c = 0; c < children; c++) {
    const kids = schema[pos]!.num_children ?? 0;
    const size = 1 + (kids > 0 ? subtreeSize(schema, pos + 1, kids) : 0);
    n += size;
    pos += size;
  }
  return n;
}

function formatOf(path: string | null, bytes: Uint8Array): string {
  const ext = path?.slice(path.lastIndexOf('.') + 1).toLowerCase() ?? '';
  if (IMAGE_EXTENSIONS.has(ext)) return ext === 'jpeg' ? 'jpg' : ext;
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return 'png';
  if (bytes[0] === 0x52 && bytes[1] === 0x49) return 'webp';
  return 'jpg';
}

export class ParquetShard implements Shard {
  constructor(
    readonly name: string,
    private open: (metrics: DataMetrics) => Promise<AsyncBuffer>,
  ) {}

  async *samples(start: number, metrics: DataMetrics): AsyncGenerator<Sample> {
    let file: AsyncBuffer;
    let meta: FileMetaData;
    try {
      file = await this.open(metrics);
      meta = await parquetMetadataAsync(file);
    } catch (err) {
      throw err instanceof ShardError ? err : new ShardError(this.name, (err as Error).message);
    }
    const cols = findColumns(meta, this.name);
    const columns = cols.label ? [cols.image, cols.label] : [cols.image];
    let rowStart = 0;
    for (const group of meta.row_groups) {
      const rows = Number(group.num_rows);
      const rowEnd = rowStart + rows;
      if (rowEnd > start) {
        let objects: Record<string, unknown>[];
        try {
          objects = await parquetReadObjects({
            file,
            metadata: meta,
            columns,
            rowStart: Math.max(rowStart, start),
            rowEnd,
            utf8: false,
          });
        } catch (err) {
          throw new ShardError(this.name, `row group at row ${rowStart}: ${(err as Error).message}`);
        }
        let row = Math.max(rowStart, start);
        for (const obj of objects) {
          const cell = obj[cols.image] as { bytes?: Uint8Array | null; path?: Uint8Array | string | null } | null;
          const bytes = cell?.bytes;
          const path = cell?.path == null ? null : typeof cell.path === 'string' ? cell.path : new TextDecoder().decode(cell.path);
          if (!bytes || bytes.length === 0) {
            metrics.ignoredEntries++;
          } else {
            const label = cols.label === null ? -1 : Number(obj[cols.label] ?? -1);
            yield { key: path ?? `${this.name}#${row}`, shard: this.name, index: row, image: bytes, format: formatOf(path, bytes), label, json: null };
          }
          row++;
        }
      }
      rowStart = rowEnd;
    }
  }
}
