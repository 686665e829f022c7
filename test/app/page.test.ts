/**
 * The page a user expects, on the built app (static server, headless Chromium): no failed
 * request and no page error while it starts, at a wide (1400 px) and a narrow (800 px)
 * window; an icon at /favicon.ico and the ones the page and its web app manifest name; a
 * title and a description; set-up and run side by side on the wide window and stacked on the
 * narrow one, with nothing wider than the window; a link at the top that brings the demo,
 * below the fold, into view. Screenshots go to test-results/app/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { appReady, ROOT, serveBuiltApp, watchProblems, type ServedApp } from './serve.ts';

const SHOTS = join(ROOT, 'test-results', 'app');

interface Box { x: number; y: number; width: number; height: number }

async function box(page: Page, selector: string): Promise<Box> {
  const b = await page.locator(selector).first().boundingBox();
  if (!b) throw new Error(`${selector} is not displayed`);
  return b;
}

/** Opens the app in a window `width` px wide; collects failed requests and page errors. */
async function openAt(app: ServedApp, width: number) {
  const context = await app.browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(`${app.base}/`);
  await appReady(page);
  // Let what the page starts by itself (adapter probe, sample manifest, icons) settle.
  await page.waitForLoadState('networkidle');
  return { context, page, problems };
}

describe('the page (built, static server, Chromium)', () => {
  let app: ServedApp;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    app = await serveBuiltApp();
  });
  afterAll(async () => app?.close());

  it('has a title, a description, an icon and an installable manifest whose icons all load', async () => {
    const { context, page, problems } = await openAt(app, 1400);
    expect(await page.title()).toMatch(/webspark/);
    const description = await page.locator('meta[name=description]').getAttribute('content');
    expect(description?.length ?? 0).toBeGreaterThan(40);
    const manifestHref = await page.locator('link[rel=manifest]').getAttribute('href');
    const checked = await page.evaluate(async (href) => {
      const get = async (url: string) => {
        const r = await fetch(url);
        return { url: r.url, status: r.status, type: r.headers.get('content-type') ?? '', bytes: (await r.arrayBuffer()).byteLength };
      };
      const manifestUrl = new URL(href!, location.href);
      const manifest = await (await fetch(manifestUrl)).json();
      const icons: string[] = [
        '/favicon.ico',
        ...[...document.querySelectorAll<HTMLLinkElement>('link[rel~=icon], link[rel=apple-touch-icon]')].map((l) => l.href),
        ...manifest.icons.map((i: { src: string }) => new URL(i.src, manifestUrl).href),
      ];
      return { manifest, icons: await Promise.all(icons.map(get)) };
    }, manifestHref);
    expect(checked.manifest).toMatchObject({ short_name: 'webspark', display: 'standalone', start_url: './' });
    expect(checked.manifest.icons.map((i: { sizes: string }) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    expect(checked.icons.length).toBeGreaterThanOrEqual(6);
    for (const icon of checked.icons) {
      expect(icon.status, icon.url).toBe(200);
      expect(icon.type, icon.url).toMatch(/^image\//);
      expect(icon.bytes, icon.url).toBeGreaterThan(100);
    }
    expect(problems).toEqual([]);
    await context.close();
  });

  it('puts set-up and run side by side on a wide window, the demo canvases beside its controls', async () => {
    const { context, page, problems } = await openAt(app, 1400);
    const setup = await box(page, '#setup');
    const run = await box(page, '#run');
    expect(Math.abs(setup.y - run.y)).toBeLessThan(1);
    expect(run.x).toBeGreaterThanOrEqual(setup.x + setup.width);
    const controls = await box(page, '#demo .buttons');
    const views = await box(page, '#demo .demo-views');
    expect(views.x).toBeGreaterThanOrEqual(controls.x + controls.width);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1400);
    await page.screenshot({ path: join(SHOTS, 'page-1400.png'), fullPage: true });
    // The demo sits below the set-up and run; the header's link takes a visitor there.
    const inView = () => page.evaluate(() => {
      const r = document.getElementById('demo')!.getBoundingClientRect();
      return r.top < innerHeight && r.bottom > 0;
    });
    expect(await inView()).toBe(false);
    await page.click('#to-demo');
    await page.waitForFunction(() => document.getElementById('demo')!.getBoundingClientRect().top < innerHeight, null, { timeout: 10_000 });
    expect(await inView()).toBe(true);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('stacks the sections on an 800 px window with nothing wider than the window', async () => {
    const { context, page, problems } = await openAt(app, 800);
    const setup = await box(page, '#setup');
    const run = await box(page, '#run');
    expect(run.y).toBeGreaterThanOrEqual(setup.y + setup.height);
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('main *')]
        .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}.${e.className}`),
    );
    expect(wide).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(800);
    await page.screenshot({ path: join(SHOTS, 'page-800.png'), fullPage: true });
    expect(problems).toEqual([]);
    await context.close();
  });
});
