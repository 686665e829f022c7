/**
 * The conv auto-tune's persisted choices in the browser (src/ops/autotune.ts `TuneStore`):
 * one IndexedDB entry per adapter through idb-keyval, as the checkpoint store keeps its
 * manifest. The worker's kernel tuning (src/worker/tune-host.ts) keeps its choices here.
 */
import { get, set } from 'idb-keyval';
import type { TuneStore } from '../../ops/autotune.ts';
import type { ConvConfig } from '../../ops/conv-plan.ts';

const PREFIX = 'webspark-autotune:';

export class BrowserTuneStore implements TuneStore {
  async load(adapter: string): Promise<Record<string, ConvConfig>> {
    return { ...((await get<Record<string, ConvConfig>>(PREFIX + adapter)) ?? {}) };
  }

  async save(adapter: string, entries: Record<string, ConvConfig>): Promise<void> {
    const old = (await get<Record<string, ConvConfig>>(PREFIX + adapter)) ?? {};
    await set(PREFIX + adapter, { ...old, ...entries });
  }
}
