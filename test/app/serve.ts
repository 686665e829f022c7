/**
 * The app as users get it: `vite build` (the repo's vite.config.ts, through Vite's JS API)
 * into a temporary folder, served by a plain static file server on 127.0.0.1, opened in
 * headless Chromium (Debian's /usr/bin/chromium through playwright-core, WebGPU on
 * SwiftShader where there is no GPU), as bench/data-browser.ts does.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../bench/data-browser.ts';

/** The bearer token the test server wants under /gated/. */
export const GATED_TOKEN = 'test-token-1234';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.tar': 'application/x-tar',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.md': 'text/plain',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
};

export interface ServedApp {
  base: string;
  /** The build output the server serves (a file written there is served from then on). */
  dir: string;
  browser: Browser;
  /** Another Chromium with WebGPU turned off (closed with the app). */
  browserWithoutWebGpu(): Promise<Browser>;
  /**
   * Unreachable (false): the server cuts every request's connection unanswered, as a network
   * that is down; `refused` counts the requests that came while it was so.
   */
  setReachable(on: boolean): void;
  readonly refused: number;
  close(): Promise<void>;
}

/** Builds the app, serves the output statically and launches Chromium. */
export async function serveBuiltApp(executablePath = '/usr/bin/chromium'): Promise<ServedApp> {
  const dir = mkdtempSync(join(tmpdir(), 'webspark-app-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const f of cleanups.reverse()) await f();
  };
  try {
    const { build } = await import('vite');
    await build({ root: ROOT, logLevel: 'error', build: { outDir: dir, emptyOutDir: true } });
    let reachable = true;
    let refused = 0;
    const server = createServer((req, res) => {
      if (!reachable) {
        refused++;
        return void req.socket.destroy();
      }
      let path = normalize(decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      // A gated copy of the public files, as a dataset host that wants a token would be.
      if (path.startsWith('/gated/')) {
        if (req.headers.authorization !== `Bearer ${GATED_TOKEN}`) return void res.writeHead(401).end();
        path = path.slice('/gated'.length);
      }
      if (path.includes('..')) return void res.writeHead(400).end();
      const file = join(dir, path === '/' ? 'index.html' : path);
      let size: number;
      try {
        const st = statSync(file);
        if (!st.isFile()) throw new Error('not a file');
        size = st.size;
      } catch {
        return void res.writeHead(404).end();
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const browserWithoutWebGpu = async () => {
      const other = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-webgpu'] });
      cleanups.push(() => other.close());
      return other;
    };
    return {
      base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      dir,
      browser,
      browserWithoutWebGpu,
      close,
      setReachable: (on) => void (reachable = on),
      get refused() {
        return refused;
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Waits for `selector`; on a timeout the error also says what the page showed (`shown` runs
 * in the page), since a bare timeout says nothing about why a run never got there.
 */
export async function waitOrExplain(page: Page, selector: string, timeout: number, shown: () => string): Promise<void> {
  try {
    await page.waitForSelector(selector, { timeout });
  } catch (err) {
    const trace = traces.get(page);
    const pending = trace ? [...trace.pending].map((r) => `${r.method()} ${r.url()}`) : [];
    throw new Error(
      `${(err as Error).message}\n${await page.evaluate(shown)}\n` +
        `requests still open: ${pending.length ? pending.join(', ') : 'none'}\n` +
        `last console lines (page and workers):\n${trace?.console.slice(-20).join('\n') ?? '(not traced)'}`,
    );
  }
}

/** What a page asked for and printed, for the explanation of a wait that timed out. */
interface PageTrace {
  pending: Set<Request>;
  console: string[];
}
const traces = new WeakMap<Page, PageTrace>();

function trace(page: Page): void {
  const t: PageTrace = { pending: new Set(), console: [] };
  traces.set(page, t);
  page.on('request', (r) => t.pending.add(r));
  page.on('requestfinished', (r) => t.pending.delete(r));
  page.on('requestfailed', (r) => t.pending.delete(r));
  page.on('console', (m) => {
    t.console.push(`${new Date().toISOString().slice(11, 19)} ${m.type()}: ${m.text()}`);
    if (t.console.length > 200) t.console.shift();
  });
}

/** Collects what went wrong while `page` runs: page errors, failed requests, HTTP errors. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}

/** Waits until the page says the app has started (after a goto or a reload). */
export async function appReady(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
}

/** A new page on the app in `context`, its uncaught errors pushed to `errors`, once the app is ready. */
export async function openApp(context: BrowserContext, base: string, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  trace(page);
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}/`);
  await appReady(page);
  return page;
}
