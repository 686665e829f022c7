/**
 * Where a string appears in what the page stored: every IndexedDB database's object stores,
 * localStorage, sessionStorage, cookies, and every file of the origin's private file system
 * (OPFS: checkpoints, the run manifest's files), bytes read as Latin-1. Runs in the page.
 * Also counts what it read, so a test can tell "not found" from "nothing looked at".
 */
import type { Page } from 'playwright-core';

export interface StoredSearch {
  /** "indexedDB db/store", "localStorage", "opfs path/to/file", ... where `needle` occurs. */
  found: string[];
  /** How much was searched: IndexedDB records, OPFS files, OPFS bytes. */
  records: number;
  files: number;
  bytes: number;
}

export async function searchStored(page: Page, needle: string): Promise<StoredSearch> {
  return page.evaluate(async (needle: string) => {
    const out = { found: [] as string[], records: 0, files: 0, bytes: 0 };
    const latin1 = (b: ArrayBuffer | ArrayBufferView): string => {
      const u8 = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      let s = '';
      for (let i = 0; i < u8.length; i += 8192) s += String.fromCharCode(...u8.subarray(i, i + 8192));
      return s;
    };
    // Values as text: strings and numbers as JSON, binary as Latin-1, Blobs read.
    const text = async (v: unknown): Promise<string> => {
      if (v instanceof Blob) return latin1(await v.arrayBuffer());
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return latin1(v as ArrayBufferView);
      if (Array.isArray(v)) return (await Promise.all(v.map(text))).join('\n');
      if (v && typeof v === 'object') {
        const parts = await Promise.all(Object.entries(v).map(async ([k, x]) => `${k}=${await text(x)}`));
        return parts.join('\n');
      }
      return String(v);
    };
    const req = <T>(r: IDBRequest<T>) => new Promise<T>((ok, fail) => ((r.onsuccess = () => ok(r.result)), (r.onerror = () => fail(r.error))));
    for (const info of await indexedDB.databases()) {
      const db = await req(indexedDB.open(info.name!));
      for (const name of Array.from(db.objectStoreNames)) {
        const store = db.transaction(name, 'readonly').objectStore(name);
        const [keys, values] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
        out.records += values.length;
        if ((await text([keys, values])).includes(needle)) out.found.push(`indexedDB ${info.name}/${name}`);
      }
      db.close();
    }
    for (const [where, s] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]] as const) {
      for (let i = 0; i < s.length; i++) {
        const k = s.key(i)!;
        if (`${k}=${s.getItem(k)}`.includes(needle)) out.found.push(`${where} ${k}`);
      }
    }
    if (document.cookie.includes(needle)) out.found.push('cookie');
    const walk = async (dir: FileSystemDirectoryHandle, path: string): Promise<void> => {
      for await (const [name, handle] of (dir as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
        if (handle.kind === 'directory') await walk(handle as FileSystemDirectoryHandle, `${path}${name}/`);
        else {
          const bytes = await (await (handle as FileSystemFileHandle).getFile()).arrayBuffer();
          out.files += 1;
          out.bytes += bytes.byteLength;
          if (latin1(bytes).includes(needle)) out.found.push(`opfs ${path}${name}`);
        }
      }
    };
    await walk(await navigator.storage.getDirectory(), '');
    return out;
  }, needle);
}
