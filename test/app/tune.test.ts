/**
 * "Tune kernels for this GPU" in the browser app (the `vite build` output served statically,
 * headless Chromium on SwiftShader, the tiny model; src/worker/tune-host.ts):
 * - on a software adapter the option starts off (each candidate run is slow there);
 * - a run with it on (the 2 largest conv shapes, which bounds the time) shows the
 *   tuner's progress and outcome in the log, stores one choice per shape in IndexedDB under
 *   the adapter's key, and trains (finite loss);
 * - after a reload (a new worker and GPU device, the same browser storage), resuming that
 *   run tunes again with the run's stored set-up and takes every choice from the cache:
 *   re-checked, none timed; the form shows the option as the run had it.
 * Screenshot: test-results/app/12-tuned.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { appReady, openApp, ROOT, serveBuiltApp, type ServedApp } from './serve.ts';

const SHOTS = join(ROOT, 'test-results', 'app');
// Every shape costs seconds here, cached or not: each check compiles the candidate's pipelines.
const SHAPES = 2;

/** Waits for a log line matching `re`; on a timeout, says what the log showed. */
async function logShows(page: Page, re: RegExp, timeout = 120_000): Promise<string> {
  try {
    const handle = await page.waitForFunction(
      ([src, flags]) => [...document.querySelectorAll('#log li')].map((li) => li.textContent ?? '').find((t) => new RegExp(src!, flags).test(t)) ?? false,
      [re.source, re.flags] as const,
      { timeout },
    );
    return (await handle.jsonValue()) as string;
  } catch (err) {
    const shown = await page.evaluate(() => `set-up error: ${document.getElementById('setup-error')!.textContent}; log: ${document.getElementById('log')!.textContent}`);
    throw new Error(`${(err as Error).message}\nwanted ${re}\n${shown}`);
  }
}

/** The loss the stats panel shows (the last reported step's). */
async function shownLoss(page: Page): Promise<number> {
  const m = /loss\s+(\S+)/.exec(await page.locator('#stats').innerText());
  return m ? Number(m[1]) : NaN;
}

/** IndexedDB entries of the tuning cache (idb-keyval's default store): adapter key -> choices. */
function tuneCache(page: Page): Promise<Record<string, Record<string, unknown>>> {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('keyval-store');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const store = open.result.transaction('keyval', 'readonly').objectStore('keyval');
          const out: Record<string, Record<string, unknown>> = {};
          const cursor = store.openCursor();
          cursor.onerror = () => reject(cursor.error);
          cursor.onsuccess = () => {
            const c = cursor.result;
            if (!c) return resolve(out);
            if (String(c.key).startsWith('webspark-autotune:')) out[String(c.key)] = c.value as Record<string, unknown>;
            c.continue();
          };
        };
      }),
  );
}

describe('browser app: tune kernels for this GPU', () => {
  let app: ServedApp;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    app = await serveBuiltApp();
    context = await app.browser.newContext({ viewport: { width: 1100, height: 900 } });
    page = await openApp(context, app.base, errors);
  }, 180_000);
  afterAll(async () => {
    await context?.close();
    await app?.close();
  });

  it('tunes after step 0 with progress and outcome in the log, caches the choices in IndexedDB, and a resumed run uses them untimed', async () => {
    const autotune = page.locator('input[name=autotune]');
    // SwiftShader: off by default (the page names the adapter a software one).
    await expect(autotune.isChecked()).resolves.toBe(false);
    await autotune.check();
    await page.fill('input[name=tuneShapes]', String(SHAPES));
    await page.fill('input[name=steps]', '20');
    await page.fill('input[name=autosaveMinutes]', '0');
    await page.fill('input[name=previewEvery]', '100');
    await page.click('#start');

    // Progress: the start line, the k/N status, then the outcome.
    await logShows(page, new RegExp(`tuning conv kernels: 0/${SHAPES} shapes \\(the ${SHAPES} largest\\)`));
    const done = await logShows(page, /kernel tuning done in/);
    expect(done).toMatch(new RegExp(`: ${SHAPES} conv shapes \\(${SHAPES} timed, 0 from this browser's cache`));
    expect(done).toMatch(/; \d+ candidates rejected by the numerical check; \d+ shapes use a non-default kernel configuration; \d+ smaller shapes keep the default kernels/);
    await expect(page.locator('#tune-status').innerText()).resolves.toBe(`conv kernels tuned: ${SHAPES}/${SHAPES} shapes`);

    // The run trains on after tuning, with a finite loss.
    await page.waitForFunction(() => Number(document.getElementById('stats')?.dataset.step) >= 2, null, { timeout: 90_000 });
    expect(Number.isFinite(await shownLoss(page))).toBe(true);
    await page.screenshot({ path: join(SHOTS, '12-tuned.png'), fullPage: true });

    // One choice per tuned shape, under this adapter's key.
    const cache = await tuneCache(page);
    const adapters = Object.keys(cache);
    expect(adapters).toHaveLength(1);
    expect(adapters[0]).toMatch(/\(fallback\)$/);
    const entries = Object.entries(cache[adapters[0]!]!);
    expect(entries).toHaveLength(SHAPES);
    for (const [key, config] of entries) {
      expect(key).toMatch(/^(fwd|dx|dw) /);
      expect(typeof config).toBe('object');
    }

    await page.click('#stop');
    await page.waitForSelector('#state[data-state="stopped"]', { timeout: 120_000 });
    const saved = Number(await page.locator('#state').getAttribute('data-step'));

    // A reload: a new worker and GPU device; the run's tuning set-up is kept with the run.
    await page.reload();
    await appReady(page);
    await page.click('#resume-run');
    await page.waitForSelector('#state[data-state="running"]', { timeout: 60_000 });
    await expect(autotune.isChecked()).resolves.toBe(true);
    await expect(page.locator('input[name=tuneShapes]').inputValue()).resolves.toBe(String(SHAPES));
    const again = await logShows(page, /kernel tuning done in/);
    // Every choice from the cache: re-checked, nothing timed.
    // (On a mismatch, the whole log: the tuner's lines say why a stored choice was not taken.)
    const log = await page.evaluate(() => [...document.querySelectorAll('#log li')].map((li) => li.textContent).join('\n'));
    expect(again, log).toMatch(new RegExp(`: ${SHAPES} conv shapes \\(0 timed, ${SHAPES} from this browser's cache`));
    await page.waitForFunction((s) => Number(document.getElementById('stats')?.dataset.step) >= s + 1, saved, { timeout: 90_000 });
    expect(Number.isFinite(await shownLoss(page))).toBe(true);
    // The cache holds the same choices (nothing was re-timed, so nothing changed).
    expect(Object.entries((await tuneCache(page))[adapters[0]!]!)).toEqual(entries);
    await page.click('#stop');
    await page.waitForSelector('#state[data-state="stopped"]', { timeout: 120_000 });
    expect(errors).toEqual([]);
  }, 400_000);
});
