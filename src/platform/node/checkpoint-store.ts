/**
 * Checkpoints on disk, written so that a crash at any moment leaves the previous checkpoint
 * intact: each file is written under a temporary name, flushed to disk, then renamed over its
 * final name (an atomic replace on POSIX file systems). Leftover temporary files from a
 * killed write are removed the next time a store opens the folder. The newest `keep` are kept.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const TMP = '.partial';

export interface StoredCheckpoint {
  name: string;
  path: string;
  step: number;
  bytes: number;
}

export class NodeCheckpointStore {
  constructor(readonly dir: string, readonly keep = 3) {
    mkdirSync(dir, { recursive: true });
    this.removePartials();
  }

  /** Name of the checkpoint at `step` (sortable). */
  static nameFor(step: number): string {
    return `checkpoint-${String(step).padStart(9, '0')}.safetensors`;
  }

  /** Writes `parts` atomically as checkpoint `step`; prunes old ones; returns the path. */
  save(step: number, parts: readonly Uint8Array[]): string {
    const name = NodeCheckpointStore.nameFor(step);
    const final = join(this.dir, name);
    const tmp = `${final}${TMP}-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      for (const part of parts) {
        let off = 0;
        while (off < part.length) off += writeSync(fd, part, off, part.length - off);
      }
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        /* already gone */
      }
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : (err as Error).message;
      // `code` and `cause` travel with it so the supervisor can tell "storage full" apart.
      throw Object.assign(new Error(`could not write checkpoint ${final}: ${why}. The previous checkpoint is intact.`), { code, cause: err });
    }
    closeSync(fd);
    renameSync(tmp, final);
    this.syncDir();
    this.prune();
    return final;
  }

  list(): StoredCheckpoint[] {
    return readdirSync(this.dir)
      .map((name) => /^checkpoint-(\d+)\.safetensors$/.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => {
        const path = join(this.dir, m[0]);
        return { name: m[0], path, step: Number(m[1]), bytes: statSync(path).size };
      })
      .sort((a, b) => a.step - b.step);
  }

  latest(): StoredCheckpoint | null {
    const all = this.list();
    return all[all.length - 1] ?? null;
  }

  private prune(): void {
    const all = this.list();
    for (const old of all.slice(0, Math.max(0, all.length - this.keep))) unlinkSync(old.path);
  }

  /** Temporary files of writes that never finished (the process died mid-save). */
  private removePartials(): void {
    for (const name of readdirSync(this.dir)) {
      if (name.includes(TMP)) unlinkSync(join(this.dir, name));
    }
  }

  private syncDir(): void {
    try {
      const fd = openSync(this.dir, 'r');
      fsyncSync(fd);
      closeSync(fd);
    } catch {
      /* some file systems do not allow syncing a directory */
    }
  }
}
