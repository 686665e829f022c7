/**
 * The Fine-tune panel's classifiers in the browser: the safetensors bytes in the origin private
 * file system (directory `classifiers`), the list with what each was trained on in IndexedDB
 * through idb-keyval, as the checkpoint store keeps checkpoints (checkpoint-store.ts): a file is
 * written whole and flushed before the list names it, and `open` deletes files the list does
 * not name (writes a closed tab never finished).
 */
import { get, set } from 'idb-keyval';
import { removeUnnamed, whyWriteFailed, writeWhole } from './checkpoint-store.ts';

const LIST_KEY = 'webspark.classifiers.v1';
const DIR = 'classifiers';

export interface ClassifierEntry {
  file: string;
  /** The architecture's name ('tiny', 'resnet18', ...). */
  model: string;
  classNames: string[];
  inputSize: number;
  /** Where the encoder came from ('random init', a checkpoint file's name, ...). */
  from: string;
  data: string;
  labelFraction: number;
  trainImages: number;
  /** Validation top-1 after the last epoch (NaN: no validation images). */
  valTop1: number;
  bytes: number;
  savedAt: number;
}

export class BrowserClassifierStore {
  private constructor(private dir: FileSystemDirectoryHandle) {}

  static async open(): Promise<BrowserClassifierStore> {
    const root = await navigator.storage.getDirectory();
    const store = new BrowserClassifierStore(await root.getDirectoryHandle(DIR, { create: true }));
    const named = new Set((await store.list()).map((c) => c.file));
    await removeUnnamed(store.dir, named);
    return store;
  }

  /** The stored classifiers, oldest first. */
  async list(): Promise<ClassifierEntry[]> {
    return (await get<ClassifierEntry[]>(LIST_KEY)) ?? [];
  }

  /** Writes `parts` as a new classifier file and names it in the list once the bytes are flushed. */
  async save(parts: readonly Uint8Array[], info: Omit<ClassifierEntry, 'file' | 'bytes' | 'savedAt'>): Promise<ClassifierEntry> {
    const savedAt = Date.now();
    const file = `${info.model}-classifier-${savedAt.toString(36)}.safetensors`;
    let bytes: number;
    try {
      bytes = await writeWhole(this.dir, file, parts);
    } catch (err) {
      throw new Error(`could not store the classifier ${file}: ${whyWriteFailed(err)}`, { cause: err });
    }
    const entry: ClassifierEntry = { ...info, file, bytes, savedAt };
    await set(LIST_KEY, [...(await this.list()), entry]);
    return entry;
  }

  async read(file: string): Promise<Uint8Array> {
    if (!(await this.list()).some((c) => c.file === file)) throw new Error(`no stored classifier ${file}: fine-tune one first, or pick another from the list`);
    const handle = await this.dir.getFileHandle(file);
    return new Uint8Array(await (await handle.getFile()).arrayBuffer());
  }

  async delete(file: string): Promise<void> {
    await set(LIST_KEY, (await this.list()).filter((c) => c.file !== file));
    await this.dir.removeEntry(file).catch(() => {});
  }
}
