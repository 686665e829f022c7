/**
 * Registers the service worker (src/platform/browser/service-worker.ts, built to sw.js) in
 * built pages, and keeps one line of the page saying whether the app works offline and, if
 * not, why: saving (with the bytes so far), available, failed (with the reason), no service
 * workers in this browser or context, or the development server, where no worker is
 * registered because it would cache the dev server's modules.
 *
 * The line's `data-state` is one of: dev, unsupported, saving, ready, incomplete, failed.
 */
import { STATUS_REQUEST, type OfflineReport } from '../platform/browser/offline-cache.ts';

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const UPDATE_SAVED = ' A newer version is saved; it opens once every tab of this app is closed.';

/** The worker's file name, defined by tools/precache-plugin.ts in builds; undefined under `vite dev`. */
declare const __SERVICE_WORKER__: string;
const SERVICE_WORKER: string | null = typeof __SERVICE_WORKER__ === 'undefined' ? null : __SERVICE_WORKER__;

export function initOfflineStatus(line: HTMLElement): void {
  const show = (state: string, text: string) => {
    line.dataset.state = state;
    line.textContent = text;
  };
  if (SERVICE_WORKER === null) {
    return show('dev', 'Offline use: off under the development server (npm start), whose modules change as you edit; a built page (npm run build) works offline.');
  }
  if (!('serviceWorker' in navigator)) {
    return show('unsupported', window.isSecureContext
      ? 'Not available offline: this browser has no service workers.'
      : 'Not available offline: service workers need HTTPS (or localhost), and this page came over plain HTTP.');
  }
  show('saving', 'Saving the app for offline use…');
  navigator.serviceWorker.addEventListener('message', (e: MessageEvent) => {
    const m = e.data as { type?: string; done?: number; total?: number; message?: string };
    // A newer build that fails to save leaves the saved one working: only a page without one says failed.
    if (m.type === 'webspark-offline-failed' && line.dataset.state !== 'ready') show('failed', `Not available offline: ${m.message}.`);
    else if (m.type === 'webspark-offline-progress' && line.dataset.state === 'saving') {
      show('saving', `Saving the app for offline use: ${mib(m.done!)} of ${mib(m.total!)}…`);
    }
  });
  navigator.serviceWorker.startMessages();
  // After the page has loaded: the download (the demo model is most of it) does not compete with it.
  const go = () => void register(line, show).catch((err: unknown) => show('failed', `Not available offline: the service worker did not register (${(err as Error).message}).`));
  if (document.readyState === 'complete') go();
  else window.addEventListener('load', go, { once: true });
}

async function register(line: HTMLElement, show: (state: string, text: string) => void): Promise<void> {
  const registration = await navigator.serviceWorker.register(new URL(`${import.meta.env.BASE_URL}${SERVICE_WORKER}`, document.baseURI));
  const watched = new Set<ServiceWorker>();
  const watch = (worker: ServiceWorker | null) => {
    if (!worker || watched.has(worker)) return;
    watched.add(worker);
    worker.addEventListener('statechange', () => {
      // An install that failed: its reason came as a message, unless the page missed it.
      if (worker.state === 'redundant' && line.dataset.state === 'saving') {
        show('failed', 'Not available offline: saving the files failed (the service worker\'s console says why).');
      }
      if (worker.state === 'installed' && registration.active && line.dataset.state === 'ready') line.textContent += UPDATE_SAVED;
    });
  };
  watch(registration.installing);
  registration.addEventListener('updatefound', () => watch(registration.installing));
  const active = (await navigator.serviceWorker.ready).active;
  if (!active) return;
  const r = await ask(active);
  if (r.missing.length > 0) {
    show('incomplete', `Not fully available offline: ${r.missing.length} of ${r.files} files are missing from the cache ` +
      `(${r.missing.slice(0, 3).join(', ')}${r.missing.length > 3 ? ', …' : ''}); they are fetched from the network while online.`);
    return;
  }
  const update = registration.waiting ? UPDATE_SAVED : '';
  show('ready', `Available offline (${r.files} files, ${mib(r.bytes)}, version ${r.version}).${update}`);
  line.dataset.version = r.version;
  line.dataset.files = String(r.files);
}

/** The active worker's report on its cache. */
function ask(worker: ServiceWorker): Promise<OfflineReport> {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => {
      const answer = e.data as OfflineReport | { error: string };
      if ('error' in answer) reject(new Error(answer.error));
      else resolve(answer);
    };
    worker.postMessage({ type: STATUS_REQUEST }, [channel.port2]);
  });
}
