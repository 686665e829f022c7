/**
 * What the service worker (service-worker.ts) keeps for offline use and which requests it
 * answers, as plain functions so that Node tests can check them without a browser.
 *
 * The precache list is written at build time (tools/precache-plugin.ts): every file of the
 * static build except the worker itself, with the build's version (a hash of every file's
 * path and bytes). Nothing else is ever put in the cache: a response the page fetches at run
 * time (a URL dataset with its token, another site's files) is never stored, so the cache
 * holds this build's own files and nothing of the user's.
 */

/** One build's offline set. `files` are paths relative to the worker's scope ('index.html', 'assets/…'). */
export interface PrecacheManifest {
  version: string;
  files: { path: string; bytes: number }[];
}

/** The cache names this app uses start with this; a cache of another name is never touched. */
export const CACHE_PREFIX = 'webspark-offline-';

export const cacheName = (m: PrecacheManifest): string => `${CACHE_PREFIX}${m.version}`;

/** The bytes a build downloads to work offline. */
export const precacheBytes = (m: PrecacheManifest): number => m.files.reduce((a, f) => a + f.bytes, 0);

/** The page the worker falls back to for a navigation without network. */
export const FALLBACK_PAGE = 'index.html';

/**
 * How the worker answers a request:
 * - `cache`: a file of this build's list, from the cache (cache-first);
 * - `navigate`: a page load within the scope, from the network, else the cached index.html;
 * - `network`: not the worker's business; the browser fetches it as if there were no worker.
 */
export type Route = 'cache' | 'navigate' | 'network';

export interface RequestFacts {
  url: string;
  method: string;
  mode: string;
  /** Whether it asks for part of a file (a resumed download: the cache holds whole files only). */
  hasRange: boolean;
}

/**
 * The route of a request under a worker whose scope is `scope` (a URL ending in '/').
 * Only same-origin GETs within the scope are answered; of those, files named in `files` (a set
 * of paths relative to the scope) from the cache, navigations network-first.
 */
export function routeFor(r: RequestFacts, scope: string, files: ReadonlySet<string>): Route {
  if (r.method !== 'GET' || r.hasRange) return 'network';
  const url = new URL(r.url);
  const base = new URL(scope);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) return 'network';
  if (r.mode === 'navigate') return 'navigate';
  // A query string asks for something else than the built file (a cache-busting fetch): the network's.
  if (url.search !== '') return 'network';
  return files.has(decodeURIComponent(url.pathname.slice(base.pathname.length))) ? 'cache' : 'network';
}

/** The worker's answer to the page's question "is this build available offline?". */
export interface OfflineReport {
  version: string;
  files: number;
  bytes: number;
  /** Paths of the list not in the cache (empty: everything is there). */
  missing: string[];
}

/** The message the page posts to the worker (with a MessagePort for the answer). */
export const STATUS_REQUEST = 'webspark-offline-status';
