/**
 * A folder of images as shards: ImageFolder (`train/<class>/*.jpg`, labels from the sorted
 * class folder names, as torchvision) or a flat folder (no labels). Platform code lists the
 * files (Node paths, a browser folder picker); this module decides labels and shards.
 *
 * Files are sorted by path and dealt round-robin into shards of about `filesPerShard`, so each
 * shard mixes classes and the epoch's shard order plus the shuffle buffer give a good mix.
 */
import { IMAGE_EXTENSIONS, type DataMetrics, type Sample, type Shard } from './types.ts';

/** A file in the folder: its path relative to the folder ('/'-separated) and how to read it. */
export interface FileRef {
  path: string;
  read(): Promise<Uint8Array>;
}

export interface FolderOptions {
  /** Names the shards (`<name>[3/12]`). */
  name: string;
  filesPerShard?: number;
}

export interface FolderDataset {
  shards: Shard[];
  /** Class names in label order; empty for a flat folder. */
  classes: string[];
  images: number;
}

function extension(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

class FolderShard implements Shard {
  constructor(
    readonly name: string,
    private files: { ref: FileRef; label: number }[],
  ) {}

  async *samples(start: number, metrics: DataMetrics): AsyncGenerator<Sample> {
    for (let index = start; index < this.files.length; index++) {
      const { ref, label } = this.files[index]!;
      // A file that cannot be read is handled like an undecodable image: skipped and counted
      // by the decoder stage, which sees the empty bytes.
      let image: Uint8Array;
      try {
        image = await ref.read();
      } catch {
        image = new Uint8Array(0);
      }
      const format = extension(ref.path);
      yield { key: ref.path, shard: this.name, index, image, format: format === 'jpeg' ? 'jpg' : format, label, json: null };
    }
  }
}

export function imageFolder(files: FileRef[], opts: FolderOptions): FolderDataset {
  let images = files.filter((f) => IMAGE_EXTENSIONS.has(extension(f.path)));
  // A dataset folder with a train/ split: train on that split only.
  const inTrain = images.filter((f) => f.path.startsWith('train/'));
  if (inTrain.length > 0) images = inTrain.map((f) => ({ path: f.path.slice('train/'.length), read: f.read }));
  images.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const classOf = (p: string) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : null);
  const classes = [...new Set(images.map((f) => classOf(f.path)).filter((c): c is string => c !== null))].sort();
  const labelOf = new Map(classes.map((c, i) => [c, i]));
  const per = Math.max(1, opts.filesPerShard ?? 1000);
  const n = Math.max(1, Math.ceil(images.length / per));
  const dealt: { ref: FileRef; label: number }[][] = Array.from({ length: n }, () => []);
  images.forEach((ref, i) => {
    const c = classOf(ref.path);
    dealt[i % n]!.push({ ref, label: c === null ? -1 : labelOf.get(c)! });
  });
  const shards = images.length === 0 ? [] : dealt.map((list, k) => new FolderShard(`${opts.name}[${k + 1}/${n}]`, list));
  return { shards, classes, images: images.length };
}
