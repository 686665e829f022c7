/**
 * The conv auto-tune's persisted choices in Node (src/ops/autotune.ts `TuneStore`): one JSON
 * file `{ [adapter]: { [key]: ConvConfig } }`, by default `$XDG_CACHE_HOME/webspark/autotune.json`
 * (`~/.cache/...`). Written to a temporary name and renamed, so a killed write leaves the old
 * file. An unreadable file is reported and treated as empty: it only costs a re-tune.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuneStore } from '../../ops/autotune.ts';
import type { ConvConfig } from '../../ops/conv-plan.ts';

export function defaultTuneCachePath(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webspark', 'autotune.json');
}

export class NodeTuneStore implements TuneStore {
  constructor(
    readonly path = defaultTuneCachePath(),
    private warn: (line: string) => void = () => {},
  ) {}

  private readAll(): Record<string, Record<string, ConvConfig>> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return {}; // no cache yet
    }
    try {
      const data = JSON.parse(text) as unknown;
      if (data && typeof data === 'object' && !Array.isArray(data)) return data as Record<string, Record<string, ConvConfig>>;
    } catch {
      // fall through
    }
    this.warn(`autotune: ${this.path} is not a tuning cache (JSON object); ignoring it (delete it to silence this)`);
    return {};
  }

  async load(adapter: string): Promise<Record<string, ConvConfig>> {
    return { ...(this.readAll()[adapter] ?? {}) };
  }

  async save(adapter: string, entries: Record<string, ConvConfig>): Promise<void> {
    const all = this.readAll();
    all[adapter] = { ...(all[adapter] ?? {}), ...entries };
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.partial-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(all, null, 1)}\n`);
    renameSync(tmp, this.path);
  }
}
