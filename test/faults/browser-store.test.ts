/**
 * The OPFS checkpoint store in headless Chromium (the browser side of the checkpoint faults):
 * - the page is closed while a checkpoint is being written: after reopening, the previous
 *   checkpoint is named by the manifest and reads back whole, and the partial file is deleted;
 * - storage full (QuotaExceededError thrown by the sync access handle's write): a clear
 *   message, recognised as "storage full" (the worker then pauses), the previous checkpoint
 *   intact and no partial file left.
 * The real store runs in a dedicated worker (test/faults/page/store-worker.ts, bundled by
 * Vite into a temporary folder) behind a blank page on a local static server.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let server: Server;
let base = '';
let browser: Browser;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webspark-store-page-'));
  const { build } = await import('vite');
  await build({
    root,
    configFile: false,
    logLevel: 'error',
    build: {
      outDir: dir,
      emptyOutDir: true,
      minify: false,
      lib: { entry: join(root, 'test/faults/page/store-worker.ts'), formats: ['es'], fileName: () => 'store-worker.js' },
    },
  });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>store</title>');
  server = createServer((req, res) => {
    const name = new URL(req.url!, 'http://x').pathname === '/store-worker.js' ? 'store-worker.js' : 'index.html';
    res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(readFileSync(join(dir, name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function open(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(base);
  await page.evaluate(() => {
    const w = new Worker('/store-worker.js', { type: 'module' });
    const replies: unknown[] = [];
    const waiters: ((v: unknown) => void)[] = [];
    w.onmessage = (e) => (waiters.length ? waiters.shift()!(e.data) : replies.push(e.data));
    const next = () => new Promise((resolve) => (replies.length ? resolve(replies.shift()) : waiters.push(resolve)));
    Object.assign(window, { ask: (m: unknown) => (w.postMessage(m), next()), next });
  });
  return page;
}

type Ask = (m: unknown) => Promise<Record<string, any>>;
const ask = (page: Page, m: unknown) => page.evaluate((msg) => (window as unknown as { ask: Ask }).ask(msg), m);
const next = (page: Page) => page.evaluate(() => (window as unknown as { next: () => Promise<Record<string, any>> }).next());

describe('OPFS checkpoint store in Chromium', () => {
  it('page closed mid-write: the previous checkpoint loads after reopening and the partial file is removed', async () => {
    const context = await browser.newContext();
    const first = await open(context);
    const { run } = await ask(first, { op: 'addRun' });
    const good = await ask(first, { op: 'save', runId: run.id, step: 1, mib: 1, fill: 1 });
    expect(good.started).toBe(true);
    const goodFile = (await next(first)).file as string;
    // Start a 768 MiB write and close the page (which ends its worker) while it runs.
    await first.evaluate((id) => (window as unknown as { ask: Ask }).ask({ op: 'save', runId: id, step: 2, mib: 768, fill: 2 }), run.id);
    await new Promise((r) => setTimeout(r, 400));
    await first.close();

    const second = await open(context);
    const before = await ask(second, { op: 'files' });
    // The unfinished file is there until the store opens ...
    expect(before.files.length).toBe(2);
    const opened = await ask(second, { op: 'open' });
    // ... and gone after; the manifest still names only the good checkpoint.
    expect(opened.files).toEqual([goodFile]);
    expect(opened.manifest.runs[0].checkpoints.map((c: { step: number }) => c.step)).toEqual([1]);
    expect(await ask(second, { op: 'read', file: goodFile })).toEqual({ length: 1 << 20, first: 1, last: 1 });
    await context.close();
  }, 120_000);

  it('storage full: a clear message, recognised as storage full, the previous checkpoint intact', async () => {
    const context = await browser.newContext();
    const page = await open(context);
    const { run } = await ask(page, { op: 'addRun' });
    await ask(page, { op: 'save', runId: run.id, step: 1, mib: 1, fill: 3 });
    const goodFile = (await next(page)).file as string;
    const r = await ask(page, { op: 'quota', runId: run.id, step: 2 });
    expect(r.error).toMatch(/^could not write checkpoint run-.*-step-000000002-.*\.safetensors: the browser's storage quota for this site is full\. The previous checkpoint is intact\.$/);
    expect(r.full).toBe(true);
    expect(r.files).toEqual([goodFile]);
    expect(r.manifest.runs[0].checkpoints.map((c: { step: number }) => c.step)).toEqual([1]);
    expect(await ask(page, { op: 'read', file: goodFile })).toEqual({ length: 1 << 20, first: 3, last: 3 });
    await context.close();
  }, 120_000);
});
