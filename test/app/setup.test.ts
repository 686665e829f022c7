/**
 * The set-up panel and the data sources of the browser app (the `vite build` output served
 * statically, headless Chromium on SwiftShader, the tiny model):
 * - the GPU memory estimate, the effective lr schedule and the precision are shown for the
 *   chosen set-up (SwiftShader has no shader-f16: auto is f32, and f16 is refused by name),
 *   and a set-up too large for the device's limits is warned about before it runs, naming the
 *   largest batch that fits by the estimate;
 * - a URL pattern with a bearer token trains from the test server's gated copy of the shard
 *   (the server answers 401 without the token: the token must be sent), and afterwards the
 *   token is in nothing the page stored (IndexedDB, OPFS files, local storage, cookies);
 * - a local image folder (the shard's JPEGs extracted to a folder) trains;
 * - the autosave interval is a setting: at 0.05 min (3 s) a checkpoint lands while the run
 *   keeps running, without a pause;
 * - the first step's time (pipeline compile) is shown apart from the step time.
 * Screenshots go to test-results/app/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { GATED_TOKEN, openApp, ROOT, serveBuiltApp, waitOrExplain, type ServedApp } from './serve.ts';
import { searchStored } from './stored.ts';

const SHOTS = join(ROOT, 'test-results', 'app');
/** Waits for the run state; on a timeout, says what the page showed (set-up error, log). */
async function stateIs(page: Page, s: string): Promise<void> {
  // Generous: stopping waits for the step in flight and a checkpoint, on 2 shared cores.
  await waitOrExplain(page, `#state[data-state="${s}"]`, 150_000, () => `set-up error: ${document.getElementById('setup-error')!.textContent}; log: ${document.getElementById('log')!.textContent}`);
}

describe('browser app set-up: memory estimate, schedule, URL and folder sources, autosave', () => {
  let app: ServedApp;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const folder = mkdtempSync(join(tmpdir(), 'webspark-folder-'));

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // An image folder: the bundled shard's JPEGs alone (no .cls / .json).
    const images = join(folder, 'my-images');
    mkdirSync(images);
    execFileSync('tar', ['-xf', join(ROOT, 'public', 'data', 'sample-000000.tar'), '-C', images]);
    for (const f of readdirSync(images)) if (!f.endsWith('.jpg')) unlinkSync(join(images, f));
    app = await serveBuiltApp();
    context = await app.browser.newContext({ viewport: { width: 1100, height: 900 } });
    // Headless Chromium has showDirectoryPicker, whose native dialog Playwright cannot drive:
    // hide it so the page uses its <input webkitdirectory> fallback, which Playwright can.
    await context.addInitScript(() => {
      delete (window as unknown as { showDirectoryPicker?: unknown }).showDirectoryPicker;
    });
    page = await openApp(context, app.base, errors);
  }, 180_000);
  afterAll(async () => {
    await context?.close();
    await app?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('shows the memory estimate and the effective schedule, and warns before a device limit', async () => {
    const estimate = page.locator('#memory-estimate');
    await expect(estimate.innerText()).resolves.toMatch(/GPU memory estimate: [\d.]+ MiB .*largest buffer/);
    const small = Number(await estimate.getAttribute('data-total'));
    expect(small).toBeGreaterThan(0);
    await expect(page.locator('#memory-warning').isHidden()).resolves.toBe(true);
    // The shared small-scale rule: peak lr 0.1 whatever the batch (the base lr field is 'auto').
    await expect(page.locator('#schedule').innerText()).resolves.toMatch(/peak lr 1\.000e-1 .*x 2\/256/);
    const precision = page.locator('#precision');
    await expect(precision.innerText()).resolves.toBe("Precision f32 (default: the adapter has no 'shader-f16').");
    await page.selectOption('select[name=precision]', 'f16');
    await page.waitForFunction(() => /needs the WebGPU feature 'shader-f16'.*--precision f32/.test(document.getElementById('precision')!.textContent ?? ''));
    await page.selectOption('select[name=precision]', 'auto');
    await page.waitForFunction(() => /^Precision f32/.test(document.getElementById('precision')!.textContent ?? ''));
    await page.fill('input[name=batchSize]', '8');
    await page.waitForFunction(() => /x 8\/256/.test(document.getElementById('schedule')!.textContent ?? ''));
    await expect(page.locator('#schedule').innerText()).resolves.toMatch(/peak lr 1\.000e-1/);
    // A set-up far beyond SwiftShader's limits: ResNet-50 at 224 px, batch 512, decoder 768.
    await page.selectOption('select[name=model]', 'resnet50');
    await page.selectOption('select[name=inputSize]', '224');
    await page.fill('input[name=decoderWidth]', '768');
    await page.fill('input[name=batchSize]', '512');
    const warning = page.locator('#memory-warning');
    await warning.waitFor({ state: 'visible', timeout: 10_000 });
    await expect(warning.innerText()).resolves.toMatch(/run out of GPU memory.*largest batch that fits by the estimate is \d+ \(now 512\)/s);
    const largest = Number(await warning.getAttribute('data-largest-batch'));
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(512);
    await page.screenshot({ path: join(SHOTS, '7-memory-warning.png'), fullPage: true });
    // At the suggested batch the warning goes away.
    await page.fill('input[name=batchSize]', String(largest));
    await warning.waitFor({ state: 'hidden', timeout: 10_000 });
    // Back to the tiny set-up for the runs below.
    await page.selectOption('select[name=model]', 'tiny');
    await page.selectOption('select[name=inputSize]', '64');
    await page.fill('input[name=decoderWidth]', '32');
    await page.fill('input[name=batchSize]', '2');
  }, 60_000);

  it('trains from a URL pattern with a bearer token, autosaves on a short interval, and shows the first step apart', async () => {
    await page.selectOption('select[name=dataKind]', 'url');
    await page.fill('input[name=dataUrl]', `${app.base}/gated/data/sample-{000000..000000}.tar`);
    await page.fill('input[name=dataToken]', GATED_TOKEN);
    await page.fill('input[name=steps]', '200');
    await page.fill('input[name=autosaveMinutes]', '0.05'); // 3 s
    await page.fill('input[name=previewEvery]', '2');
    await page.click('#start');
    await stateIs(page, 'running');
    // Samples arrive through the gated URL (the server answers 401 without the token).
    await page.waitForFunction(() => Number(document.getElementById('stats')?.dataset.step) >= 2, null, { timeout: 90_000 });
    const stats = await page.locator('#stats').innerText();
    expect(stats).toMatch(/first step \(compiles pipelines\)\s+\d+ ms/);
    expect(stats).toMatch(/step time\s+\d+ ms \(mean \d+ ms\)/);
    // A timed autosave: a checkpoint appears while the run keeps going (no pause by the user).
    await page.waitForSelector('#checkpoint-list tr[data-step]', { timeout: 90_000 });
    await expect(page.locator('#log').innerText()).resolves.toMatch(/checkpoint at step \d+/);
    await page.waitForFunction(() => document.getElementById('state')!.dataset.state === 'running', null, { timeout: 30_000 });
    const before = Number(await page.locator('#stats').getAttribute('data-step'));
    await page.waitForFunction((s) => Number(document.getElementById('stats')!.dataset.step) > s, before, { timeout: 60_000 });
    await page.screenshot({ path: join(SHOTS, '8-url-autosave.png'), fullPage: true });
    await page.click('#stop');
    await stateIs(page, 'stopped');
    // The token was needed (the server refuses without it) but is stored nowhere: not in the
    // run manifest, a checkpoint, local storage or a cookie. The URL pattern, stored as the
    // run's label, is found in IndexedDB: the search does see what the page stored.
    const token = await searchStored(page, GATED_TOKEN);
    expect(token.found).toEqual([]);
    expect(token.files).toBeGreaterThan(0);
    expect(token.records).toBeGreaterThan(0);
    const label = await searchStored(page, '/gated/data/sample-{000000..000000}.tar');
    expect(label.found.some((w) => w.startsWith('indexedDB'))).toBe(true);
  }, 400_000);

  it('trains from a local image folder', async () => {
    await page.selectOption('select[name=dataKind]', 'folder');
    const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10_000 }), page.click('#pick-folder')]);
    await chooser.setFiles(join(folder, 'my-images'));
    await page.waitForFunction(() => /folder: my-images \(24 files\)/.test(document.getElementById('data-summary')!.textContent ?? ''), null, { timeout: 10_000 });
    await page.fill('input[name=autosaveMinutes]', '0');
    await page.click('#start');
    await stateIs(page, 'running');
    await page.waitForFunction(() => Number(document.getElementById('stats')?.dataset.step) >= 1, null, { timeout: 90_000 });
    await expect(page.locator('#stats').innerText()).resolves.toMatch(/skipped samples\s+0/);
    await page.click('#stop');
    await stateIs(page, 'stopped');
  }, 180_000);

  /** Toggles patch `p` of the demo grid by clicking its centre; resolves with the new render. */
  async function togglePatch(p: number, fmap: number): Promise<{ sum: string; visible: number }> {
    const renders = Number((await page.locator('#demo-rec').getAttribute('data-renders')) ?? 0);
    const grid = page.locator('#demo-grid');
    const cell = (await grid.boundingBox())!.width / fmap;
    // locator.click scrolls the grid into view; the position is relative to it.
    await grid.click({ position: { x: ((p % fmap) + 0.5) * cell, y: (Math.floor(p / fmap) + 0.5) * cell } });
    // A render of the new mask: one already under way when the click came drew the old one.
    const drawnAfter = (n: number) => {
      const rec = document.getElementById('demo-rec')!.dataset;
      return Number(rec.renders) > n && rec.mask === document.getElementById('demo-grid')!.dataset.mask;
    };
    await page.waitForFunction(drawnAfter, renders, { timeout: 60_000 }).catch(async (e) => {
      throw new Error(`${e.message}\n${await demoState()}`);
    });
    return { sum: (await page.locator('#demo-rec').getAttribute('data-sum'))!, visible: Number(await page.locator('#demo-grid').getAttribute('data-visible')) };
  }

  /** What the demo panel shows (for failure messages). */
  const demoState = () => page.evaluate(() => ['demo-model', 'demo-error-text'].map((id) => document.getElementById(id)!.textContent).join(' | ') +
    ` | renders ${document.getElementById('demo-rec')!.dataset.renders} visible ${document.getElementById('demo-grid')!.dataset.visible}`);

  it('masking demo: toggling patches changes the reconstruction, with the trained model and an imported checkpoint', async () => {
    // The model being trained (the folder run above, stopped), on a preview image of the URL run.
    await expect(page.locator('#demo-image option').count()).resolves.toBeGreaterThan(1);
    // The demo works only while on screen.
    await page.locator('#demo').scrollIntoViewIfNeeded();
    // (Where the build ships a demo model, the panel drew it at load; starting a run switched to the run's model.)
    await page.waitForSelector('#demo-rec[data-source="the model being trained"]', { timeout: 60_000 }).catch(async (e) => {
      throw new Error(`${e.message}\n${await demoState()}`);
    });
    await expect(page.locator('#demo-model').innerText()).resolves.toMatch(/model: tiny @64px from the model being trained/);
    const fmap = 2; // 64 px / 32
    const v0 = Number(await page.locator('#demo-grid').getAttribute('data-visible'));
    const s0 = (await page.locator('#demo-rec').getAttribute('data-sum'))!;
    const a = await togglePatch(0, fmap);
    expect(Math.abs(a.visible - v0)).toBe(1);
    expect(a.sum).not.toBe(s0);
    const b = await togglePatch(0, fmap); // back to the first mask
    expect(b.visible).toBe(v0);
    expect(b.sum).not.toBe(a.sum);
    // Invert: the other patches are shown.
    const r = Number(await page.locator('#demo-rec').getAttribute('data-renders'));
    await page.click('#demo-invert');
    await page.waitForFunction((n) => Number(document.getElementById('demo-rec')!.dataset.renders) > n, r, { timeout: 60_000 });
    expect(Number(await page.locator('#demo-grid').getAttribute('data-visible'))).toBe(fmap * fmap - v0);
    await page.screenshot({ path: join(SHOTS, '9-demo-trained.png'), fullPage: true });

    // An official-format SparK checkpoint (the narrow ResNet fixture, safetensors), on our own image.
    await page.setInputFiles('#demo-checkpoint', join(ROOT, 'test', 'fixtures', 'model', 'resnet18s.weights.safetensors'));
    await page.waitForFunction(() => /from resnet18s\.weights\.safetensors/.test(document.getElementById('demo-model')!.textContent ?? ''), null, { timeout: 60_000 });
    const r2 = Number(await page.locator('#demo-rec').getAttribute('data-renders'));
    const jpg = readdirSync(join(folder, 'my-images')).find((f) => f.endsWith('.jpg'))!;
    await page.setInputFiles('#demo-file', join(folder, 'my-images', jpg));
    await page.waitForFunction((n) => Number(document.getElementById('demo-rec')!.dataset.renders) > n, r2, { timeout: 60_000 });
    await expect(page.locator('#demo-error-text').isHidden()).resolves.toBe(true);
    const info = await page.locator('#demo-model').innerText();
    const f2 = Number(/@(\d+)px/.exec(info)![1]) / 32;
    const c0 = (await page.locator('#demo-rec').getAttribute('data-sum'))!;
    expect(Number.isFinite(Number(c0))).toBe(true);
    const c1 = await togglePatch(f2 * f2 - 1, f2);
    expect(c1.sum).not.toBe(c0);
    expect(Number(await page.locator('#demo-error').getAttribute('data-max'))).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, '10-demo-checkpoint.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 180_000);
});
