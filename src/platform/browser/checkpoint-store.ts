/**
 * Checkpoints in the browser: the bytes in the origin private file system (OPFS), the list of
 * runs and their checkpoints (the manifest) in IndexedDB through idb-keyval.
 *
 * Crash safety without a rename: every checkpoint is written to a NEW file (its name carries
 * the run and the step), through a synchronous access handle (workers only; the fastest OPFS
 * path), flushed and closed; only then does the manifest name it. A tab killed mid-write
 * leaves an unnamed file that the next `open` deletes, and the manifest still names the
 * previous, complete checkpoint. The newest `keep` checkpoints of a run are kept.
 */
import { get, set } from 'idb-keyval';
import type { TrainConfig } from '../../train/trainer.ts';

const MANIFEST_KEY = 'webspark.manifest.v1';
const DIR = 'checkpoints';

export interface CheckpointEntry {
  file: string;
  step: number;
  bytes: number;
  savedAt: number;
}

export interface RunEntry {
  id: string;
  createdAt: number;
  config: TrainConfig;
  /** What it trained on (a URL pattern or a description of picked files). */
  data?: string;
  /** Oldest first. */
  checkpoints: CheckpointEntry[];
  /** The run reached its last step. */
  finished: boolean;
  /** Loss per step so far (for redrawing the chart after a reload). */
  losses: number[];
  /** Whether the run tunes its conv kernels (src/worker/tune-host.ts); absent: it does not. */
  tuning?: { autotune: boolean; maxShapes: number };
}

export interface Manifest {
  runs: RunEntry[];
}

export class BrowserCheckpointStore {
  private constructor(private dir: FileSystemDirectoryHandle, readonly keep: number) {}

  /** Opens the store and deletes files the manifest does not name (writes that never finished). */
  static async open(keep = 3): Promise<BrowserCheckpointStore> {
    const root = await navigator.storage.getDirectory();
    const store = new BrowserCheckpointStore(await root.getDirectoryHandle(DIR, { create: true }), keep);
    const named = new Set((await store.manifest()).runs.flatMap((r) => r.checkpoints.map((c) => c.file)));
    await removeUnnamed(store.dir, named);
    return store;
  }

  async manifest(): Promise<Manifest> {
    return (await get<Manifest>(MANIFEST_KEY)) ?? { runs: [] };
  }

  private async update(fn: (m: Manifest) => void): Promise<Manifest> {
    const m = await this.manifest();
    fn(m);
    await set(MANIFEST_KEY, m);
    return m;
  }

  async addRun(config: TrainConfig, data?: string, tuning?: RunEntry['tuning']): Promise<RunEntry> {
    const run: RunEntry = {
      id: `run-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      createdAt: Date.now(),
      config,
      ...(data ? { data } : {}),
      ...(tuning ? { tuning } : {}),
      checkpoints: [],
      finished: false,
      losses: [],
    };
    await this.update((m) => m.runs.push(run));
    return run;
  }

  async run(id: string): Promise<RunEntry | undefined> {
    return (await this.manifest()).runs.find((r) => r.id === id);
  }

  /** Writes `parts` as checkpoint `step` of run `runId`; names it in the manifest after the bytes are flushed. */
  async save(runId: string, step: number, parts: readonly Uint8Array[], extra: { finished: boolean; losses: number[] }): Promise<string> {
    const file = `${runId}-step-${String(step).padStart(9, '0')}-${Date.now().toString(36)}.safetensors`;
    let bytes: number;
    try {
      bytes = await writeWhole(this.dir, file, parts);
    } catch (err) {
      // `cause` travels with it so the supervisor can tell "storage full" apart.
      throw new Error(`could not write checkpoint ${file}: ${whyWriteFailed(err)}. The previous checkpoint is intact.`, { cause: err });
    }
    const dropped: string[] = [];
    await this.update((m) => {
      const run = m.runs.find((r) => r.id === runId);
      if (!run) throw new Error(`no run ${runId} in the manifest`);
      run.checkpoints.push({ file, step, bytes, savedAt: Date.now() });
      run.finished = extra.finished;
      run.losses = extra.losses;
      while (run.checkpoints.length > this.keep) dropped.push(run.checkpoints.shift()!.file);
    });
    for (const name of dropped) await this.dir.removeEntry(name).catch(() => {});
    return file;
  }

  /** The bytes of a stored checkpoint. */
  async read(file: string): Promise<Uint8Array> {
    const handle = await this.dir.getFileHandle(file);
    return new Uint8Array(await (await handle.getFile()).arrayBuffer());
  }

  /** Removes one checkpoint (and the run when it was its last). */
  async delete(file: string): Promise<void> {
    await this.update((m) => {
      for (const r of m.runs) r.checkpoints = r.checkpoints.filter((c) => c.file !== file);
      m.runs = m.runs.filter((r) => r.checkpoints.length > 0 || !r.finished);
    });
    await this.dir.removeEntry(file).catch(() => {});
  }

  /** Removes a run and its checkpoints. */
  async deleteRun(id: string): Promise<void> {
    let files: string[] = [];
    await this.update((m) => {
      files = m.runs.find((r) => r.id === id)?.checkpoints.map((c) => c.file) ?? [];
      m.runs = m.runs.filter((r) => r.id !== id);
    });
    for (const name of files) await this.dir.removeEntry(name).catch(() => {});
  }
}

/**
 * Writes `parts` as the file `name` of `dir` through a synchronous access handle (workers only),
 * flushed and closed; returns its length. On a failure the partial file is removed.
 */
export async function writeWhole(dir: FileSystemDirectoryHandle, name: string, parts: readonly Uint8Array[]): Promise<number> {
  const handle = await dir.getFileHandle(name, { create: true });
  const access = await handle.createSyncAccessHandle();
  let bytes = 0;
  try {
    access.truncate(0);
    for (const part of parts) {
      let off = 0;
      while (off < part.length) off += access.write(part.subarray(off), { at: bytes + off });
      bytes += part.length;
    }
    access.flush();
  } catch (err) {
    access.close();
    await dir.removeEntry(name).catch(() => {});
    throw err;
  }
  access.close();
  return bytes;
}

/** A failed write's reason for a message: a full quota said as such. */
export function whyWriteFailed(err: unknown): string {
  return (err as Error).name === 'QuotaExceededError' ? "the browser's storage quota for this site is full" : (err as Error).message;
}

/** Deletes the files of `dir` that `named` does not hold (writes that never finished). */
export async function removeUnnamed(dir: FileSystemDirectoryHandle, named: ReadonlySet<string>): Promise<void> {
  const orphans: string[] = [];
  for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
    if (!named.has(name)) orphans.push(name);
  }
  for (const name of orphans) await dir.removeEntry(name).catch(() => {});
}
