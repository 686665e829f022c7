/**
 * The page. Training runs in a dedicated Web Worker (src/worker/trainer-worker.ts) driven
 * through comlink; this thread only renders what the worker reports and forwards the user's
 * intent, so it stays responsive while the GPU works. Without WebGPU it says so and what to do.
 */
import * as Comlink from 'comlink';
import type { TrainerHost } from '../worker/trainer-worker.ts';
import { APP_MODELS, DEFAULT_APP_CONFIG, fromTrainConfig, type AdapterReport, type AppConfig, type DataSource, type HostEvent, type SetupPlan } from '../worker/protocol.ts';
import { pickFolder } from '../platform/browser/data-sources.ts';
import type { Manifest, RunEntry } from '../platform/browser/checkpoint-store.ts';
import type { Preview, StepMetrics, TrainerState } from '../train/trainer.ts';
import { TINY_MODEL, modelNameOf } from '../models/zoo.ts';
import { LossChart } from './chart.ts';
import { drawImage } from './images.ts';
import { initDemo, type DemoPanel } from './demo.ts';
import { initEvalPanel } from './eval-panel.ts';
import { initFinetunePanel } from './finetune-panel.ts';
import { initOfflineStatus } from './offline-status.ts';
import { download } from './panel-sources.ts';
import { autoResumeChosen, BUNDLED_LABEL, chooseAutoResume, showDeviceStatus, storedSource, TabLife } from './tab-life.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const SHARD_URL = new URL('data/sample-000000.tar', document.baseURI).href;
const worker = new Worker(new URL('../worker/trainer-worker.ts', import.meta.url), { type: 'module', name: 'webspark-trainer' });
const host = Comlink.wrap<TrainerHost>(worker);
const chart = new LossChart($<HTMLCanvasElement>('loss-chart'));
const lrChart = new LossChart($<HTMLCanvasElement>('lr-chart'), 0);
const normChart = new LossChart($<HTMLCanvasElement>('norm-chart'), 0);
const form = $<HTMLFormElement>('setup-form');


let totalSteps = 0;
let runStartedAt = 0;
let folderFiles: File[] = [];
let demo: DemoPanel | null = null;
const tab = new TabLife(log);

/** The data source the set-up panel names now. */
function dataSource(): DataSource {
  const kind = (form.elements.namedItem('dataKind') as HTMLSelectElement).value;
  if (kind === 'url') {
    const pattern = (form.elements.namedItem('dataUrl') as HTMLInputElement).value.trim();
    const token = (form.elements.namedItem('dataToken') as HTMLInputElement).value.trim();
    return { kind: 'url', pattern, label: pattern, ...(token ? { token } : {}) };
  }
  if (kind === 'files') {
    const files = [...($<HTMLInputElement>('data-files').files ?? [])];
    return { kind: 'files', files, label: `files: ${files.map((f) => f.name).join(', ')}` };
  }
  if (kind === 'folder') {
    const top = folderFiles[0]?.webkitRelativePath.split('/')[0] || (folderFiles[0] as File & { relativePath?: string })?.relativePath?.split('/')[0];
    return { kind: 'files', files: folderFiles, label: `folder: ${top ?? '(none)'} (${folderFiles.length} files)` };
  }
  return { kind: 'url', pattern: SHARD_URL, label: BUNDLED_LABEL };
}

function showDataFields(): void {
  const kind = (form.elements.namedItem('dataKind') as HTMLSelectElement).value;
  for (const label of form.querySelectorAll<HTMLElement>('label[data-for]')) label.hidden = label.dataset.for !== kind;
  $('data-summary').textContent = kind === 'folder' ? dataSource().label : '';
}
let stepsAtStart = 0;
let firstStepMs = 0;
let steadySteps = 0;
let steadyMs = 0;

const fmtBytes = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/** Shows the set-up's memory estimate (warning before a device limit) and effective schedule. */
function showPlan(p: SetupPlan, batch: number): void {
  const m = p.memory;
  const est = $('memory-estimate');
  est.textContent = `GPU memory estimate: ${fmtBytes(m.total)} (weights ${fmtBytes(m.parameters)}, gradients + optimizer ${fmtBytes(m.optimizer)}, ` +
    `activations ${fmtBytes(m.activations)}; largest buffer ${fmtBytes(m.largestBuffer)} of ${fmtBytes(p.maxBuffer)} allowed). ` +
    `WebGPU does not report how much memory the GPU has: we assume ${fmtBytes(p.budget)} (2 x maxBufferSize).`;
  est.dataset.total = String(m.total);
  const problems: string[] = [];
  if (m.largestBuffer > p.maxBuffer) problems.push(`its largest buffer (${fmtBytes(m.largestBuffer)}) exceeds this device's limit per buffer (${fmtBytes(p.maxBuffer)})`);
  if (m.total > p.budget) problems.push(`its total (${fmtBytes(m.total)}) exceeds the ${fmtBytes(p.budget)} assumed available`);
  const warn = $('memory-warning');
  warn.hidden = problems.length === 0;
  warn.textContent = problems.length === 0 ? '' : `This set-up will probably run out of GPU memory: ${problems.join('; ')}. ` +
    (p.largestBatch > 0 ? `The largest batch that fits by the estimate is ${p.largestBatch} (now ${batch}).` : 'Lower the input size or decoder width.');
  warn.dataset.largestBatch = String(p.largestBatch);
  $('schedule').textContent = `Schedule: ${p.schedule}.`;
  $('precision').textContent = `${p.precision[0]!.toUpperCase()}${p.precision.slice(1)}.`;
}

function showAdapter(section: HTMLElement, a: AdapterReport | null, error?: string): void {
  const body = el('div');
  if (!a) {
    body.append(el('p', error ?? 'No WebGPU.', 'error'));
  } else {
    const list = el('dl');
    const add = (k: string, v: string) => list.append(el('dt', k), el('dd', v));
    add('adapter', [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || '(unnamed)');
    for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup']) {
      if (a.limits[k] !== undefined) add(k, String(a.limits[k]));
    }
    add('features', a.features.join(', ') || '(none)');
    if (a.isFallbackAdapter) {
      body.append(
        el('p', 'This is a software (CPU) adapter: everything works, but training is slow. ' +
          "Use the 'tiny' model, input 64 and a small batch, or a browser with hardware WebGPU.", 'warning'),
      );
    }
    body.append(list);
  }
  section.querySelector('p')?.remove();
  section.append(body);
}

function fillForm(c: AppConfig): void {
  const model = form.elements.namedItem('model') as HTMLSelectElement;
  model.replaceChildren(...APP_MODELS.map((m) => new Option(m === TINY_MODEL ? `${TINY_MODEL} (test)` : m, m)));
  for (const [k, v] of Object.entries(c)) {
    const input = form.elements.namedItem(k) as HTMLInputElement | HTMLSelectElement | null;
    if (input instanceof HTMLInputElement && input.type === 'checkbox') input.checked = v === true;
    else if (input) input.value = v === 'auto' ? '' : String(v);
  }
}

function readForm(): AppConfig {
  const get = (k: string) => (form.elements.namedItem(k) as HTMLInputElement).value;
  const num = (k: string) => Number(get(k));
  return {
    model: get('model'),
    inputSize: num('inputSize'),
    batchSize: num('batchSize'),
    maskRatio: num('maskRatio'),
    steps: num('steps'),
    baseLr: get('baseLr').trim() === '' ? 'auto' : num('baseLr'),
    decoderWidth: num('decoderWidth'),
    previewEvery: num('previewEvery'),
    autosaveMinutes: num('autosaveMinutes'),
    seed: 0,
    autotune: (form.elements.namedItem('autotune') as HTMLInputElement).checked,
    tuneShapes: num('tuneShapes'),
    precision: get('precision') as AppConfig['precision'],
  };
}

function setState(s: TrainerState, step?: number): void {

  const label = $('state');
  label.textContent = step === undefined || s === 'running' ? s : `${s} at step ${step}`;
  if (step !== undefined) label.dataset.step = String(step);
  label.dataset.state = s;
  ($('start') as HTMLButtonElement).disabled = s === 'running';
  ($('pause') as HTMLButtonElement).disabled = s !== 'running';
  ($('resume') as HTMLButtonElement).disabled = s !== 'paused';
  ($('stop') as HTMLButtonElement).disabled = s !== 'running' && s !== 'paused';
  for (const input of form.querySelectorAll('input, select')) (input as HTMLInputElement).disabled = s === 'running';
}

function log(message: string): void {
  const list = $('log');
  list.prepend(el('li', `${new Date().toLocaleTimeString()} ${message}`));
  while (list.children.length > 50) list.lastChild!.remove();
}

const fmtTime = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

function showMetrics(m: StepMetrics): void {
  chart.set(m.step, m.loss);
  lrChart.set(m.step, m.lr);
  normChart.set(m.step, m.gradNorm);
  const done = m.step + 1;
  const progress = $<HTMLProgressElement>('progress');
  progress.max = totalSteps;
  progress.value = done;
  // The ETA counts from the first step after a (re)start: that one also compiles the pipelines.
  if (runStartedAt === 0) {
    runStartedAt = performance.now();
    stepsAtStart = done;
    firstStepMs = m.stepMs;
  } else {
    steadySteps++;
    steadyMs += m.stepMs;
  }
  const elapsed = (performance.now() - runStartedAt) / 1000;
  const rate = (done - stepsAtStart) / Math.max(elapsed, 1e-3);
  const stats: [string, string][] = [
    ['step', `${done} / ${totalSteps}`],
    ['ETA', rate > 0 ? fmtTime((totalSteps - done) / rate) : '—'],
    ['loss', m.loss.toFixed(4)],
    ['lr', m.lr.toExponential(2)],
    ['images/s', m.imagesPerSec.toPrecision(3)],
    // The first step after a (re)start also compiles the GPU pipelines: shown apart.
    ['step time', steadySteps > 0 ? `${m.stepMs.toFixed(0)} ms (mean ${(steadyMs / steadySteps).toFixed(0)} ms)` : '—'],
    ['first step (compiles pipelines)', `${firstStepMs.toFixed(0)} ms`],
    ['data wait', `${m.dataWaitMs.toFixed(0)} ms`],
    ['grad norm', m.gradNorm.toPrecision(3)],
    ['skipped samples', String(m.skippedSamples)],
    ['skipped steps', String(m.skippedSteps)],
    // 1 without loss scaling (f32); halved after an overflow, doubled after a run of clean steps.
    ['loss scale', String(m.lossScale)],
  ];
  const dl = $('stats');
  dl.replaceChildren(...stats.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
  dl.dataset.step = String(m.step);
  // The first step reported since the run (re)started: a resumed run must continue exactly there.
  dl.dataset.first ??= String(m.step);
}

function showPreview(p: Preview): void {
  const grid = $('preview-grid');
  const rows = Math.min(p.batch, 4);
  const canvases: HTMLCanvasElement[] = [];
  for (let b = 0; b < rows; b++) {
    for (const data of [p.original, p.masked, p.reconstruction, p.composite]) {
      const c = el('canvas');
      drawImage(c, data, b, p.size);
      canvases.push(c);
    }
  }
  grid.replaceChildren(...canvases);
  const label = $('preview-step');
  label.textContent = `(step ${p.step})`;
  label.dataset.step = String(p.step);
}

function onEvent(e: HostEvent): void {
  switch (e.type) {
    case 'metrics':
      showMetrics(e.metrics);
      tab.onStep(e.metrics.step);
      break;
    case 'preview':
      showPreview(e.preview);
      demo?.onPreview(e.preview);
      break;
    case 'checkpoint':
      log(`checkpoint at step ${e.step}`);
      tab.onCheckpoint(e.step);
      void refreshCheckpoints();
      break;
    case 'notice':
      log(e.message);
      break;
    case 'device':
      showDeviceStatus($('device-status'), e.status);
      break;
    case 'tuning': {
      const s = $('tune-status');
      s.textContent = e.done < e.total ? `tuning conv kernels: ${e.done}/${e.total} shapes` : `conv kernels tuned: ${e.done}/${e.total} shapes`;
      s.dataset.done = String(e.done);
      s.dataset.total = String(e.total);
      break;
    }
    case 'state':
      totalSteps = e.totalSteps;
      if (e.state === 'running') {
        runStartedAt = 0;
        steadySteps = 0;
        steadyMs = 0;
        delete $('stats').dataset.first;
      }
      setState(e.state, e.step);
      tab.onState(e.state, e.step);
      if (e.state === 'running') void demo?.refreshModel();
      // A run that ended by itself (lost the device too often, out of memory) keeps its
      // checkpoints: offer to continue from the newest without a reload.
      if (e.failure) void host.manifest().then((m) => offerResume(m, false));
      break;
  }
}

async function refreshCheckpoints(manifest?: Manifest): Promise<void> {
  const m = manifest ?? (await host.manifest());
  const body = $('checkpoint-list').querySelector('tbody')!;
  const rows: HTMLTableRowElement[] = [];
  for (const run of m.runs) {
    for (const c of run.checkpoints) {
      const tr = el('tr');
      tr.dataset.step = String(c.step);
      const dl = el('button', 'download');
      dl.onclick = async () => download(await host.readCheckpoint(c.file), c.file);
      const enc = el('button', 'encoder');
      enc.title = 'the encoder alone, timm-style keys (safetensors)';
      enc.onclick = async () => download(await host.exportEncoder(c.file), c.file.replace(/\.safetensors$/, '-encoder.safetensors'));
      const del = el('button', 'delete');
      del.onclick = async () => {
        await host.deleteCheckpoint(c.file);
        await refreshCheckpoints();
      };
      const actions = el('td');
      actions.append(dl, ' ', enc, ' ', del);
      tr.append(el('td', modelNameOf(run.config)), el('td', `step ${c.step} / ${run.config.totalSteps}`),
        el('td', `${(c.bytes / 2 ** 20).toFixed(2)} MiB`), el('td', new Date(c.savedAt).toLocaleString()), actions);
      rows.push(tr);
    }
  }
  body.replaceChildren(...rows);
  if (rows.length === 0) body.append(el('tr', 'none yet'));
  const est = await navigator.storage?.estimate?.().catch(() => null);
  const persisted = await navigator.storage?.persisted?.().catch(() => false);
  if (est) {
    const mib = (n = 0) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    $('storage').textContent = `Storage: ${mib(est.usage)} used of ${mib(est.quota)} available` +
      (persisted ? ' (persistent).' : ' (the browser may evict it under pressure; the first checkpoint asks to keep it).');
  }
}

/**
 * After a reload: offers to continue the newest unfinished run that has a checkpoint, and
 * continues it at once when `auto` and the user chose "resume automatically".
 */
function offerResume(m: Manifest, auto: boolean): void {
  const run = [...m.runs].reverse().find((r: RunEntry) => !r.finished && r.checkpoints.length > 0);
  const section = $('resume-offer');
  if (!run) return;
  const last = run.checkpoints[run.checkpoints.length - 1]!;
  const go = el('button', `Resume at step ${last.step}`);
  go.id = 'resume-run';
  const discard = el('button', 'Discard run');
  section.replaceChildren(
    el('h2', 'Unfinished run'),
    el('p', `${modelNameOf(run.config)} @${run.config.inputSize}px, batch ${run.config.batchSize}: ` +
      `saved at step ${last.step} of ${run.config.totalSteps} (${new Date(last.savedAt).toLocaleString()}).`),
    el('p', `It trained on: ${run.data ?? BUNDLED_LABEL}. Resuming reads the data source chosen in the set-up ` +
      'below; choose the same one to continue exactly.', 'hint'),
    go, ' ', discard,
  );
  section.hidden = false;
  const resumeFrom = async (source: DataSource) => {
    go.disabled = true;
    // The run's tuning set-up too (kept with the run): the worker resumes with it either way.
    fillForm({ ...fromTrainConfig(run.config, readForm().autosaveMinutes), autotune: run.tuning?.autotune ?? false, tuneShapes: run.tuning?.maxShapes ?? 0 });
    chart.reset(run.losses.slice(0, last.step));
    try {
      const step = await host.resumeRun(run.id, source, readForm().autosaveMinutes);
      log(`resumed ${run.id} at step ${step}`);
      section.hidden = true;
    } catch (err) {
      log((err as Error).message);
      go.disabled = false;
    }
  };
  go.onclick = () => void resumeFrom(dataSource());
  if (auto && autoResumeChosen()) {
    const source = storedSource(run, SHARD_URL);
    if (source) {
      log(`resuming the unfinished run at step ${last.step} by itself ("resume automatically" is on)`);
      void resumeFrom(source);
    } else {
      section.append(el('p', 'Not resumed by itself: this run trained on files picked from this computer, which the page cannot reopen. ' +
        'Pick the same files in the set-up below, then press Resume.', 'warning'));
    }
  }
  discard.onclick = async () => {
    await host.deleteRun(run.id);
    section.hidden = true;
    await refreshCheckpoints();
  };
}

async function main(): Promise<void> {
  // First: the page works offline (or says why not) whether or not this browser has WebGPU.
  initOfflineStatus($('offline-status'));
  fillForm(DEFAULT_APP_CONFIG);
  setState('idle');
  ($('start') as HTMLButtonElement).disabled = true;
  (form.elements.namedItem('dataKind') as HTMLSelectElement).onchange = showDataFields;
  showDataFields();
  $('pick-folder').onclick = async () => {
    folderFiles = await pickFolder();
    showDataFields();
  };
  $<HTMLInputElement>('smoothing').oninput = (e) => chart.setSmoothing(Number((e.target as HTMLInputElement).value));
  let adapter: AdapterReport;
  try {
    adapter = await host.adapter();
  } catch (err) {
    showAdapter($('adapter'), null, (err as Error).message);
    $('adapter').append(
      el('p', 'Training needs WebGPU. Open this page in a recent Chrome or Edge on a machine with a GPU; on Linux, ' +
        'Chrome may need chrome://flags/#enable-unsafe-webgpu, and chrome://gpu shows whether WebGPU is blocked.', 'hint'),
    );
    for (const id of ['setup', 'run', 'previews', 'demo', 'evaluate', 'finetune']) $(id).hidden = true;
    return;
  }
  showAdapter($('adapter'), adapter);
  if (adapter.isFallbackAdapter) {
    // Software adapters: start from the configuration that answers in seconds.
    // Tuning off: each candidate run is slow here (ResNet-18 at 64 px: ~4 min to tune every
    // shape); if switched on, only the 16 largest shapes.
    fillForm({ ...DEFAULT_APP_CONFIG, model: TINY_MODEL, batchSize: 2, decoderWidth: 32, steps: 100, previewEvery: 5, autotune: false, tuneShapes: 16 });
  }
  demo = initDemo(host);
  const bundled = (): DataSource => ({ kind: 'url', pattern: SHARD_URL, label: BUNDLED_LABEL });
  initEvalPanel(host, bundled, dataSource);
  initFinetunePanel(host, bundled, dataSource, () => ({ model: readForm().model, inputSize: readForm().inputSize }));
  await host.subscribe(Comlink.proxy(onEvent));
  let planned = 0;
  const replan = async () => {
    const ticket = ++planned;
    const c = readForm();
    try {
      const p = await host.plan(c);
      if (ticket === planned) showPlan(p, c.batchSize);
    } catch (e) {
      if (ticket === planned) $('memory-estimate').textContent = `GPU memory estimate: ${(e as Error).message}`;
    }
  };
  form.addEventListener('input', () => void replan());
  form.addEventListener('change', () => void replan());
  await replan();
  $('start').onclick = async () => {
    const err = $('setup-error');
    err.hidden = true;
    $('device-status').textContent = '';
    chart.reset();
    lrChart.reset();
    normChart.reset();
    try {
      await host.start(readForm(), dataSource());
      $('resume-offer').hidden = true;
    } catch (e) {
      err.textContent = (e as Error).message;
      err.hidden = false;
    }
  };
  $('pause').onclick = () => void host.pause();
  $('resume').onclick = () => void host.resume();
  $('stop').onclick = () => void host.stop();
  const autoResume = $<HTMLInputElement>('auto-resume');
  autoResume.checked = autoResumeChosen();
  autoResume.onchange = () => chooseAutoResume(autoResume.checked);
  const manifest = await host.manifest();
  await refreshCheckpoints(manifest);
  offerResume(manifest, true);
  setState('idle');
  document.body.dataset.ready = 'true';
}

void main();
