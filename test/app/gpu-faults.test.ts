/**
 * Runs in the tab survive the GPU, with real faults, in the built app in headless Chromium on
 * SwiftShader (tiny model, a few steps):
 * - the GPU process of the Chromium the test launched is SIGKILLed while a run trains (the
 *   worker's device is lost with "A valid external Instance reference no longer exists.");
 * - `device.destroy()` is called on the worker's own GPUDevice while a run trains;
 * each time the run resumes by itself from its newest checkpoint and finishes, and its final
 * weights equal those of a clean run resumed from that checkpoint through the app's own resume
 * (same adapter, same kernels; the tolerance of test/faults/supervisor.test.ts);
 * - a reload mid-run with "resume automatically" on: the run continues with no click, at the
 *   step of its newest checkpoint; the page warned before unloading unsaved steps and asked for
 *   persistent storage at the first checkpoint.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { openApp, appReady, serveBuiltApp, waitOrExplain, type ServedApp } from './serve.ts';
import { readWeightFile } from '../../src/io/checkpoint-file.ts';
import { expectClose } from '../helpers/check.ts';

const STEPS = 7;
const MINUTE = 60_000;

const stepOf = async (page: Page, sel: string) => Number(await page.locator(sel).getAttribute('data-step'));
const logText = (page: Page) => page.locator('#log').innerText();
const shown = () =>
  `state: ${document.getElementById('state')?.textContent}\nlast step shown: ${document.getElementById('stats')?.dataset.step}\n` +
  `device: ${document.getElementById('device-status')?.textContent}\nlog:\n${document.getElementById('log')?.innerText}`;

async function stateIs(page: Page, s: string, timeout = 3 * MINUTE) {
  await waitOrExplain(page, `#state[data-state="${s}"]`, timeout, shown);
}

async function stepsDone(page: Page, atLeast: number) {
  await page.waitForFunction((n) => Number(document.getElementById('stats')?.dataset.step ?? -1) + 1 >= n, atLeast, { timeout: 3 * MINUTE });
}

/** Starts the tiny model for STEPS steps with no timed checkpoints; pauses after a step (a checkpoint), resumes. Returns the paused step. */
async function startAndCheckpoint(page: Page): Promise<number> {
  await page.fill('input[name=steps]', String(STEPS));
  await page.fill('input[name=previewEvery]', String(STEPS));
  await page.fill('input[name=autosaveMinutes]', '0');
  await page.click('#start');
  await stateIs(page, 'running');
  await stepsDone(page, 2);
  await page.click('#pause');
  await stateIs(page, 'paused');
  const paused = await stepOf(page, '#state');
  await page.waitForSelector(`#checkpoint-list tr[data-step="${paused}"]`, { timeout: MINUTE });
  await page.click('#resume');
  await stateIs(page, 'running');
  await stepsDone(page, paused + 1);
  return paused;
}

/** The checkpoint at `step` of the newest run that has one (the table lists runs oldest first). */
async function download(page: Page, step: number): Promise<Uint8Array> {
  const button = page.locator(`#checkpoint-list tr[data-step="${step}"] button:text("download")`).last();
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: MINUTE }), button.click()]);
  return new Uint8Array(readFileSync(await d.path()));
}

/**
 * The reference: a copy of the checkpoint at `step` becomes a run of its own in the store
 * (its file copied, the manifest naming it as the newest unfinished run), and the app resumes
 * it through the resume offer after a reload, to the end, on a fresh device.
 */
async function cleanResumeFrom(page: Page, step: number): Promise<Uint8Array> {
  await page.evaluate(async (at) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('keyval-store');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const tx = (mode: IDBTransactionMode) => db.transaction('keyval', mode).objectStore('keyval');
    const manifest = await new Promise<{ runs: { id: string; checkpoints: { file: string; step: number }[]; finished: boolean; losses: number[] }[] }>((resolve) => {
      const r = tx('readonly').get('webspark.manifest.v1');
      r.onsuccess = () => resolve(r.result);
    });
    const run = manifest.runs.at(-1)!;
    const source = run.checkpoints.find((c) => c.step === at)!;
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('checkpoints');
    const bytes = await (await (await dir.getFileHandle(source.file)).getFile()).arrayBuffer();
    const file = `reference-step-${at}.safetensors`;
    const writable = await (await dir.getFileHandle(file, { create: true })).createWritable();
    await writable.write(bytes);
    await writable.close();
    manifest.runs.push({ ...run, id: 'reference', finished: false, losses: run.losses.slice(0, at), checkpoints: [{ ...source, file }] });
    await new Promise<void>((resolve) => {
      const t = db.transaction('keyval', 'readwrite');
      t.objectStore('keyval').put(manifest, 'webspark.manifest.v1');
      t.oncomplete = () => resolve();
    });
  }, step);
  await page.reload();
  await appReady(page);
  const offer = page.locator('#resume-run');
  await expect(offer.innerText()).resolves.toBe(`Resume at step ${step}`);
  await offer.click();
  await stateIs(page, 'finished');
  return download(page, STEPS);
}

function expectSameWeights(faulted: Uint8Array, clean: Uint8Array) {
  const a = readWeightFile(clean, 'clean');
  const b = readWeightFile(faulted, 'faulted');
  expect([...b.arrays.keys()]).toEqual([...a.arrays.keys()]);
  // Same kernels in the same order on the same adapter (as test/faults/supervisor.test.ts).
  for (const [key, va] of a.arrays) expectClose(b.arrays.get(key)!.data, va.data, { atol: 1e-6, rtol: 1e-5 }, key);
  expect(JSON.parse(b.metadata['webspark.run']!).cursor).toEqual(JSON.parse(a.metadata['webspark.run']!).cursor);
  expect(JSON.parse(b.metadata['webspark.run']!).step).toBe(STEPS);
}

/** Kills the GPU process of the browser `page` belongs to (found through CDP, checked by its command line). */
async function killGpuProcess(context: BrowserContext): Promise<number> {
  const cdp = await context.browser()!.newBrowserCDPSession();
  const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; id: number }[] };
  await cdp.detach();
  const gpu = processInfo.filter((p) => {
    try {
      return readFileSync(`/proc/${p.id}/cmdline`, 'utf8').includes('--type=gpu-process');
    } catch {
      return false;
    }
  });
  expect(gpu, JSON.stringify(processInfo)).toHaveLength(1);
  process.kill(gpu[0]!.id, 'SIGKILL');
  return gpu[0]!.id;
}

/** Destroys the worker's GPUDevice at its next command encoder (the device in use, not a new one). */
async function destroyWorkerDevice(page: Page): Promise<void> {
  const worker = page.workers().find((w) => w.url().includes('trainer-worker'));
  expect(worker, page.workers().map((w) => w.url()).join(', ')).toBeTruthy();
  await worker!.evaluate(() => {
    const proto = GPUDevice.prototype;
    const original = proto.createCommandEncoder;
    proto.createCommandEncoder = function (this: GPUDevice, ...args: Parameters<GPUDevice['createCommandEncoder']>) {
      proto.createCommandEncoder = original;
      this.destroy();
      return original.apply(this, args);
    };
  });
}

describe('GPU faults in the tab (built app, Chromium on SwiftShader)', () => {
  let app: ServedApp;
  const errors: string[] = [];

  beforeAll(async () => {
    app = await serveBuiltApp();
  });
  afterAll(async () => app?.close());

  async function faultedRun(inject: (context: BrowserContext, page: Page) => Promise<unknown>, lostWith: RegExp) {
    const context = await app.browser.newContext();
    const page = await openApp(context, app.base, errors);
    const paused = await startAndCheckpoint(page);
    await inject(context, page);
    await waitOrExplain(page, '#device-status[data-kind="resumed"]', 3 * MINUTE, shown);
    expect(await stepOf(page, '#device-status')).toBe(paused);
    const log = await logText(page);
    console.log(log.split('\n').filter((l) => /lost|resumed/.test(l)).join('\n'));
    expect(log).toMatch(lostWith);
    expect(log).toMatch(/Rebuilding the GPU device and resuming from the last checkpoint \(1 of at most 3 per hour\)/);
    expect(log).toContain(`resumed from the checkpoint at step ${paused}`);
    await stateIs(page, 'finished');
    const faulted = await download(page, STEPS);
    const clean = await cleanResumeFrom(page, paused);
    expectSameWeights(faulted, clean);
    expect(errors).toEqual([]);
    await context.close();
  }

  it('the GPU process is killed mid-run: the run resumes by itself and finishes with the weights of a clean resume', async () => {
    await faultedRun(killGpuProcess, /The GPU device was lost/);
  }, 12 * MINUTE);

  it('device.destroy() on the worker\'s device mid-run: the same', async () => {
    await faultedRun((_, page) => destroyWorkerDevice(page), /The GPU device was lost \(destroyed\)/);
  }, 12 * MINUTE);

  it('a reload mid-run with "resume automatically" continues with no click from the newest checkpoint', async () => {
    const context = await app.browser.newContext();
    const page = await openApp(context, app.base, errors);
    await page.check('#auto-resume');
    const paused = await startAndCheckpoint(page);
    // The first checkpoint asked the browser to keep the storage, and the page says what it answered.
    await page.waitForSelector('body[data-persistent]', { timeout: MINUTE });
    expect(await logText(page)).toMatch(/storage is persistent|the browser refused persistent storage/);
    // Steps since that checkpoint are unsaved: the page asks before unloading.
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.type());
      void d.accept();
    });
    await page.reload();
    await appReady(page);
    expect(dialogs).toEqual(['beforeunload']);
    await stateIs(page, 'running');
    expect(await logText(page)).toContain(`resuming the unfinished run at step ${paused} by itself`);
    await stepsDone(page, paused + 1);
    expect(Number(await page.locator('#stats').getAttribute('data-first'))).toBe(paused);
    await page.click('#stop');
    await stateIs(page, 'stopped');
    expect(errors).toEqual([]);
    await context.close();
  }, 8 * MINUTE);
});
