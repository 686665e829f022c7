/**
 * The Evaluate panel in the built app (headless Chromium on SwiftShader, as app.test.ts):
 * - asking for the model being trained without a run shows what to do, in the panel;
 * - k-NN on the bundled sample shard (24 labelled photos) for a checkpoint file (the committed
 *   official narrow ResNet-18 fixture) and the random-init encoder of the same architecture:
 *   two rows, accuracies in [0, 1] equal to correct / total, and the totals are the number of
 *   validation images the seeded key split (src/eval/split.ts, fraction 0.2, seed 0) gives;
 *   then a 3-epoch linear probe of the same file: a row with its training accuracy; then
 *   validation images from files of their own (the same shard): 24 on each side;
 * - the model being trained is refused while it runs (the message says to pause); paused, it is
 *   evaluated, and the checkpoint the pause wrote, picked from the store, gives the same counts;
 * - images without labels give the same message as `webspark eval`, shown in the panel;
 * - no uncaught error on the page.
 * Screenshot: test-results/app/11-evaluate.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { isValKey } from '../../src/eval/split.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { newMetrics } from '../../src/data/types.ts';
import { openApp, ROOT, serveBuiltApp, waitOrExplain, type ServedApp } from './serve.ts';

const SHOTS = join(ROOT, 'test-results', 'app');
const SHARD = join(ROOT, 'public', 'data', 'sample-000000.tar');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'model', 'resnet18s.weights.safetensors');

/** Waits for the panel's run to end; on a timeout says what the panel showed. */
async function evalEnds(page: Page, state: 'done' | 'failed'): Promise<void> {
  await waitOrExplain(page, `#eval-results[data-state="${state}"]`, 90_000, () => `status: ${document.getElementById('eval-status')!.textContent}; error: ${document.getElementById('eval-error')!.textContent}`);
}

describe('browser app: the Evaluate panel', () => {
  let app: ServedApp;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const folder = mkdtempSync(join(tmpdir(), 'webspark-eval-'));

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    execFileSync('tar', ['-xf', SHARD, '-C', folder]);
    app = await serveBuiltApp();
    context = await app.browser.newContext({ viewport: { width: 1100, height: 900 } });
    page = await openApp(context, app.base, errors);
  }, 180_000);
  afterAll(async () => {
    await context?.close();
    await app?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('says what to do when there is no model being trained', async () => {
    await page.click('#eval-run');
    await evalEnds(page, 'failed');
    await expect(page.locator('#eval-error').innerText()).resolves.toMatch(/no model being trained: start a run, or choose a checkpoint/);
  });

  it('runs k-NN for a checkpoint file and the random-init encoder, with the split\'s totals', async () => {
    // The validation images the panel's split must give: the keys whose seeded hash is under 0.2.
    const { shards } = await nodeShards(SHARD);
    let val = 0;
    let all = 0;
    for await (const s of shards[0]!.samples(0, newMetrics())) {
      all++;
      if (isValKey(s.key, 0, 0.2)) val++;
    }
    expect(all).toBe(24);
    expect(val).toBeGreaterThan(0);

    await page.selectOption('#eval-model', 'file');
    await page.setInputFiles('#eval-file', FIXTURE);
    await page.selectOption('#eval-protocol', 'knn');
    await page.click('#eval-run');
    await evalEnds(page, 'done');
    const rows = await page.$$eval('#eval-results tbody tr', (trs) =>
      trs.map((tr) => {
        const d = (tr as HTMLElement).dataset;
        return { model: d.model, protocol: d.protocol, accuracy: d.accuracy, correct: d.correct, total: d.total, cells: [...tr.children].map((td) => td.textContent) };
      }),
    );
    expect(rows.map((r) => r.model)).toEqual(['resnet18s.weights.safetensors', 'random init (seed 1)']);
    for (const r of rows) {
      expect(r.protocol).toBe('knn');
      const accuracy = Number(r.accuracy);
      expect(accuracy).toBeGreaterThanOrEqual(0);
      expect(accuracy).toBeLessThanOrEqual(1);
      expect(Number(r.total)).toBe(val);
      expect(accuracy).toBeCloseTo(Number(r.correct) / val, 12);
      expect(r.cells[3]).toBe(`${r.correct} / ${val}`);
      expect(Number(r.cells[5])).toBe(all - val);
    }
    await expect(page.locator('#eval-summary').innerText()).resolves.toMatch(new RegExp(`at 64 px on bundled sample shard: ${all - val} training and ${val} validation images, 7 classes`));

    // The linear probe on the same features (3 epochs: this checks the path, not the figure).
    await page.selectOption('#eval-protocol', 'linear');
    await page.fill('#eval-epochs', '3');
    await page.selectOption('#eval-random', 'none');
    await page.click('#eval-run');
    await evalEnds(page, 'done');
    const probe = page.locator('#eval-results tbody tr').last();
    await expect(probe.getAttribute('data-protocol')).resolves.toBe('linear');
    await expect(probe.getAttribute('data-total')).resolves.toBe(String(val));
    await expect(probe.locator('td').nth(4).innerText()).resolves.toMatch(/^\d+\.\d %$/);
    await page.locator('#evaluate').screenshot({ path: join(SHOTS, '11-evaluate.png') });

    // Validation images from files of their own (here the same shard): all 24 on each side.
    await page.selectOption('#eval-protocol', 'knn');
    await page.selectOption('#eval-val', 'files');
    await page.setInputFiles('#eval-val-files', SHARD);
    await page.click('#eval-run');
    await evalEnds(page, 'done');
    const own = page.locator('#eval-results tbody tr').last();
    await expect(own.getAttribute('data-total')).resolves.toBe(String(all));
    await expect(own.locator('td').nth(5).innerText()).resolves.toBe(String(all));
    await expect(page.locator('#eval-summary').innerText()).resolves.toMatch(/validation: files: sample-000000\.tar/);
    await page.selectOption('#eval-val', 'split');
  });

  it('refuses the model being trained while it runs; paused, evaluates it and its checkpoint alike', { timeout: 200_000 }, async () => {
    await page.fill('input[name=steps]', '200');
    await page.click('#start');
    await page.waitForSelector('#state[data-state="running"]', { timeout: 60_000 });
    await page.selectOption('#eval-model', 'current');
    await page.click('#eval-run');
    await evalEnds(page, 'failed');
    await expect(page.locator('#eval-error').innerText()).resolves.toMatch(/the model being trained is running: press Pause, evaluate, then Resume/);
    await page.click('#pause');
    await page.waitForSelector('#state[data-state="paused"]', { timeout: 150_000 });
    const step = Number(await page.locator('#state').getAttribute('data-step'));
    await page.waitForSelector(`#checkpoint-list tr[data-step="${step}"]`, { timeout: 30_000 });
    await page.selectOption('#eval-random', 'none');
    await page.click('#eval-run');
    await evalEnds(page, 'done');
    const last = page.locator('#eval-results tbody tr').last();
    await expect(last.getAttribute('data-model')).resolves.toBe(`model being trained (step ${step})`);
    const correct = await last.getAttribute('data-correct');
    // The checkpoint the pause wrote holds the same weights: the same predictions.
    await page.selectOption('#eval-model', 'stored');
    // The list is filled from the store's manifest when 'stored' is chosen.
    const storedFile = () => page.$eval('#eval-stored', (sel, s) => [...(sel as HTMLSelectElement).options].find((o) => o.text.includes(`step ${s} /`))?.value ?? '', step);
    await expect.poll(storedFile, { timeout: 10_000 }).not.toBe('');
    const file = await storedFile();
    await page.selectOption('#eval-stored', file);
    await page.click('#eval-run');
    await evalEnds(page, 'done');
    await expect(last.getAttribute('data-model')).resolves.toBe(file);
    await expect(last.getAttribute('data-correct')).resolves.toBe(correct);
    // The run was not touched: it resumes at the step it paused at.
    await page.click('#resume');
    const stats = () => page.$eval('#stats', (e) => [Number((e as HTMLElement).dataset.first), Number((e as HTMLElement).dataset.step)]);
    await expect.poll(async () => (await stats())[1]! >= step, { timeout: 60_000 }).toBe(true);
    expect((await stats())[0]).toBe(step);
    await page.click('#pause');
  });

  it('shows the CLI\'s message for images without labels', async () => {
    const jpgs = readdirSync(folder).filter((f) => f.endsWith('.jpg')).slice(0, 3);
    await page.selectOption('#eval-data', 'files');
    await page.setInputFiles('#eval-files', jpgs.map((f) => join(folder, f)));
    await page.click('#eval-run');
    await evalEnds(page, 'failed');
    await expect(page.locator('#eval-error').innerText()).resolves.toBe(
      `files: ${jpgs.join(', ')}: no labelled images found (3 images without a label: give .cls entries, class folders or a label column)`,
    );
    // The rows of the earlier runs stay.
    await expect(page.locator('#eval-results tbody tr').count()).resolves.toBe(6);
    expect(errors).toEqual([]);
  });
});
