/**
 * A dedicated worker for test/faults/browser-store.test.ts: drives the real OPFS checkpoint
 * store (sync access handles exist only in workers) on messages from the page.
 */
import { BrowserCheckpointStore } from '../../../src/platform/browser/checkpoint-store.ts';
import { isStorageFull } from '../../../src/train/supervisor.ts';
import type { TrainConfig } from '../../../src/train/trainer.ts';

type Msg =
  | { op: 'files' }
  | { op: 'open' }
  | { op: 'addRun' }
  | { op: 'save'; runId: string; step: number; mib: number; fill: number }
  | { op: 'read'; file: string }
  | { op: 'quota'; runId: string; step: number };

async function files(): Promise<string[]> {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('checkpoints', { create: true });
  const out: string[] = [];
  for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) out.push(name);
  return out.sort();
}

function parts(mib: number, fill: number): Uint8Array[] {
  const chunk = new Uint8Array(1 << 20).fill(fill);
  return Array.from({ length: mib }, () => chunk);
}

self.onmessage = async (e: MessageEvent<Msg>) => {
  const m = e.data;
  try {
    if (m.op === 'files') return postMessage({ files: await files() });
    const store = await BrowserCheckpointStore.open();
    if (m.op === 'open') return postMessage({ files: await files(), manifest: await store.manifest() });
    if (m.op === 'addRun') return postMessage({ run: await store.addRun({ model: 'resnet18' } as TrainConfig, 'test') });
    if (m.op === 'save') {
      postMessage({ started: true });
      return postMessage({ file: await store.save(m.runId, m.step, parts(m.mib, m.fill), { finished: false, losses: [] }) });
    }
    if (m.op === 'read') {
      const bytes = await store.read(m.file);
      return postMessage({ length: bytes.length, first: bytes[0], last: bytes[bytes.length - 1] });
    }
    if (m.op === 'quota') {
      // Storage full as Chromium reports it: the sync handle's write throws QuotaExceededError.
      const proto = (self as unknown as { FileSystemSyncAccessHandle: { prototype: { write: unknown } } }).FileSystemSyncAccessHandle.prototype;
      const write = proto.write;
      proto.write = () => {
        throw new DOMException('The operation failed because it would cause the application to exceed its storage quota.', 'QuotaExceededError');
      };
      try {
        await store.save(m.runId, m.step, parts(2, 7), { finished: false, losses: [] });
        return postMessage({ error: null });
      } catch (err) {
        return postMessage({ error: (err as Error).message, full: isStorageFull(err), files: await files(), manifest: await store.manifest() });
      } finally {
        proto.write = write;
      }
    }
  } catch (err) {
    postMessage({ failure: String((err as Error).stack ?? err) });
  }
};
