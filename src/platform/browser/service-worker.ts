/**
 * The service worker that makes the static build work offline (built to /sw.js by
 * tools/precache-plugin.ts, registered by src/ui/offline-status.ts in built pages only).
 *
 * - install: downloads every file of this build's list (offline-cache.ts; the app shell, the
 *   icons and manifest, the demo model, the sample shard, the held-out photos) into a cache
 *   named after the build's version. A file already there from an install cut short is not
 *   downloaded again; a file whose size is not the built one fails the install (a host that
 *   answers a missing file with its index page would otherwise be cached as the model).
 * - fetch: the list's files cache-first (network-first once a navigation has shown that the
 *   server has a newer build); navigations network-first, the cached index.html when the
 *   network fails; everything else untouched (never cached).
 * - activate: deletes the caches of earlier builds. No skipWaiting / clients.claim: a page keeps
 *   the worker (and the files) it loaded with, and a new build takes over once every tab of the
 *   old one is closed.
 */
import { CACHE_PREFIX, cacheName, FALLBACK_PAGE, precacheBytes, routeFor, STATUS_REQUEST, type OfflineReport, type PrecacheManifest } from './offline-cache.ts';

const sw = self as unknown as ServiceWorkerGlobalScope;

// Replaced by tools/precache-plugin.ts with this build's list, as a JSON string.
const MANIFEST = JSON.parse('__WEBSPARK_PRECACHE_MANIFEST__') as PrecacheManifest;
const CACHE = cacheName(MANIFEST);
const FILES = new Set(MANIFEST.files.map((f) => f.path));
const urlOf = (path: string) => new URL(path, sw.registration.scope).href;

/** Tells every page of the app (controlled or not) how the download goes or why it failed. */
async function tell(message: object): Promise<void> {
  for (const client of await sw.clients.matchAll({ includeUncontrolled: true, type: 'window' })) client.postMessage({ version: MANIFEST.version, ...message });
}

async function precacheFile(cache: Cache, path: string, bytes: number): Promise<void> {
  const url = urlOf(path);
  if (await cache.match(url)) return;
  // 'no-cache': revalidated with the server, so an older copy in the HTTP cache is not taken.
  const response = await fetch(new Request(url, { cache: 'no-cache' }));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  const body = await response.arrayBuffer();
  if (body.byteLength !== bytes) throw new Error(`${path}: ${body.byteLength} bytes where the build wrote ${bytes} (the host serves another file under this name)`);
  await cache.put(url, new Response(body, { headers: { 'content-type': response.headers.get('content-type') ?? 'application/octet-stream' } }));
}

async function precache(): Promise<void> {
  const cache = await caches.open(CACHE);
  const total = precacheBytes(MANIFEST);
  let done = 0;
  try {
    // A few at a time: one slow large file (the model) does not hold up the small ones.
    const queue = [...MANIFEST.files];
    const lane = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        await precacheFile(cache, f.path, f.bytes);
        done += f.bytes;
        await tell({ type: 'webspark-offline-progress', done, total });
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
  } catch (err) {
    const message = `saving for offline use failed: ${(err as Error).message}`;
    await tell({ type: 'webspark-offline-failed', message });
    throw new Error(message);
  }
}

async function removeOldCaches(): Promise<void> {
  for (const name of await caches.keys()) if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
}

/**
 * An empty cache whose existence says that the server now has another build than the saved one
 * (a navigation brought another index.html). Then the listed files come from the network first:
 * the newer page must get its own build's demo model and shard, which keep their names across
 * builds, not the saved build's. Offline, the saved copies still answer. A cache rather than a
 * variable because the browser stops and restarts an idle worker; deleted with the saved build.
 */
const NEWER_ONLINE = `${CACHE}-newer-build-online`;

async function fromCache(request: Request): Promise<Response> {
  if (await caches.has(NEWER_ONLINE)) {
    try {
      return await fetch(request);
    } catch {
      // Offline: the saved copy, below.
    }
  }
  const hit = await (await caches.open(CACHE)).match(request.url);
  // Missing (evicted, or cleared by hand): the network's, still not stored.
  return hit ?? fetch(request);
}

/** Notes whether the page the network gave is the saved build's index.html. */
async function compareWithSaved(page: Response): Promise<void> {
  const saved = await (await caches.open(CACHE)).match(urlOf(FALLBACK_PAGE));
  if (!saved) return;
  if ((await page.text()) === (await saved.text())) await caches.delete(NEWER_ONLINE);
  else await caches.open(NEWER_ONLINE);
}

async function navigate(event: FetchEvent): Promise<Response> {
  try {
    const response = await fetch(event.request);
    if (response.ok && response.headers.get('content-type')?.startsWith('text/html')) event.waitUntil(compareWithSaved(response.clone()));
    return response;
  } catch (err) {
    // Offline: the saved file itself when one is opened directly (a photo, the credits), else the app.
    const cache = await caches.open(CACHE);
    const page = (await cache.match(event.request.url)) ?? (await cache.match(urlOf(FALLBACK_PAGE)));
    if (page) return page;
    throw err;
  }
}

async function report(): Promise<OfflineReport> {
  const cache = await caches.open(CACHE);
  const missing: string[] = [];
  for (const f of MANIFEST.files) if (!(await cache.match(urlOf(f.path)))) missing.push(f.path);
  return { version: MANIFEST.version, files: MANIFEST.files.length, bytes: precacheBytes(MANIFEST), missing };
}

sw.addEventListener('install', (event) => event.waitUntil(precache()));
sw.addEventListener('activate', (event) => event.waitUntil(removeOldCaches()));
sw.addEventListener('fetch', (event) => {
  const r = event.request;
  const route = routeFor({ url: r.url, method: r.method, mode: r.mode, hasRange: r.headers.has('range') }, sw.registration.scope, FILES);
  if (route === 'cache') event.respondWith(fromCache(r));
  else if (route === 'navigate') event.respondWith(navigate(event));
});
sw.addEventListener('message', (event) => {
  if ((event.data as { type?: string } | null)?.type !== STATUS_REQUEST || !event.ports[0]) return;
  const port = event.ports[0];
  event.waitUntil(report().then((r) => port.postMessage(r), (err: unknown) => port.postMessage({ error: (err as Error).message })));
});
