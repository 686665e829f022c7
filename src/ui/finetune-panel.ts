/**
 * The Fine-tune panel: a classifier trained end to end (src/finetune, run by the worker's
 * FinetuneHost) from the model being trained, a stored checkpoint, a checkpoint file or a
 * random initialisation of the set-up panel's model, on labelled data with a label fraction.
 * Live: the training loss per step and the validation top-1 per epoch (charts), one table row
 * per epoch. The finished classifier is stored in the browser (listed, downloadable as
 * safetensors, deletable), and the prediction view shows the top-5 classes of dropped or
 * chosen images under a stored classifier. Every failure is shown in the panel.
 */
import * as Comlink from 'comlink';
import type { Remote } from 'comlink';
import type { TrainerHost } from '../worker/trainer-worker.ts';
import type { FinetuneModelChoice, FinetuneProgress, FinetuneRequest } from '../worker/finetune-host.ts';
import type { DataSource } from '../worker/protocol.ts';
import type { EpochMetrics } from '../finetune/finetune.ts';
import type { Prediction } from '../finetune/predict.ts';
import type { ClassifierEntry } from '../platform/browser/classifier-store.ts';
import { LossChart } from './chart.ts';
import { checkpointChoice, download, fillStoredCheckpoints, labelledData } from './panel-sources.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  return e;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '—');

/** The architecture a random initialisation uses: the set-up panel's model and input size. */
export type SetupModel = () => { model: string; inputSize: number };

/**
 * Wires the panel. `bundled` is the bundled sample shard's source, `setupSource` the set-up
 * panel's data source, `setupModel` its model (for random init).
 */
export function initFinetunePanel(host: Remote<TrainerHost>, bundled: () => DataSource, setupSource: () => DataSource, setupModel: SetupModel): void {
  const modelKind = $<HTMLSelectElement>('ft-model');
  const stored = $<HTMLSelectElement>('ft-stored');
  const dataKind = $<HTMLSelectElement>('ft-data');
  const run = $<HTMLButtonElement>('ft-run');
  const stop = $<HTMLButtonElement>('ft-stop');
  const status = $('ft-status');
  const progress = $<HTMLProgressElement>('ft-progress');
  const error = $('ft-error');
  const epochsBody = $('ft-epoch-table').querySelector('tbody')!;
  const lossChart = new LossChart($<HTMLCanvasElement>('ft-loss-chart'), 0.6);
  const accChart = new LossChart($<HTMLCanvasElement>('ft-acc-chart'), 0, 'epoch');
  function showFields(): void {
    for (const l of document.querySelectorAll<HTMLElement>('#finetune label[data-ft]')) l.hidden = l.dataset.ft !== modelKind.value;
    for (const l of document.querySelectorAll<HTMLElement>('#finetune label[data-ft-data]')) l.hidden = l.dataset.ftData !== dataKind.value;
  }

  const request = () => readRequest(bundled, setupSource, setupModel);

  function addEpoch(m: EpochMetrics): void {
    const tr = el('tr');
    Object.assign(tr.dataset, { epoch: String(m.epoch), step: String(m.step), trainLoss: String(m.trainLoss), top1: String(m.valTop1), top5: String(m.valTop5) });
    tr.append(el('td', String(m.epoch)), el('td', String(m.step)), el('td', m.trainLoss.toFixed(4)), el('td', pct(m.valTop1)),
      el('td', pct(m.valTop5)), el('td', Number.isFinite(m.valLoss) ? m.valLoss.toFixed(4) : '—'), el('td', m.seconds.toFixed(1)));
    epochsBody.append(tr);
    accChart.set(m.epoch - 1, m.valTop1);
  }

  function onProgress(p: FinetuneProgress): void {
    switch (p.kind) {
      case 'load':
        status.textContent = `reading labelled images: ${p.loaded}`;
        progress.removeAttribute('value');
        break;
      case 'start':
        status.textContent = `${p.keptImages} of ${p.trainImages} training images (${p.classes} classes), ${p.valImages} validation; batch ${p.batchSize}, ${p.totalSteps} steps`;
        progress.max = p.totalSteps;
        progress.value = 0;
        break;
      case 'step':
        lossChart.set(p.step, p.loss);
        progress.value = p.step + 1;
        status.textContent = `step ${p.step + 1} / ${p.totalSteps}: loss ${p.loss.toFixed(4)}`;
        break;
      case 'epoch':
        addEpoch(p.metrics);
        break;
    }
  }

  const predictor = initPrediction(host);

  run.onclick = async () => {
    error.hidden = true;
    run.disabled = true;
    stop.disabled = false;
    status.textContent = 'starting…';
    progress.value = 0;
    epochsBody.replaceChildren();
    lossChart.reset();
    accChart.reset();
    epochsBody.parentElement!.dataset.state = 'running';
    let finished = false;
    try {
      const progressOf = (p: FinetuneProgress) => {
        if (!finished) onProgress(p);
      };
      const report = await host.finetune(request(), Comlink.proxy(progressOf));
      finished = true;
      // Progress travels on its own channel: epochs it has not shown yet come from the report.
      for (const m of report.epochs.slice(epochsBody.children.length)) addEpoch(m);
      const c = report.classifier;
      $('ft-summary').textContent =
        `${report.architecture} from ${c.from}, ${report.steps} steps on ${c.trainImages} images of ${c.data} (label fraction ${c.labelFraction}), ` +
        `${c.classNames.length} classes: validation top-1 ${pct(c.valTop1)}. Stored as ${c.file}.`;
      status.textContent = 'done';
      epochsBody.parentElement!.dataset.state = 'done';
      await predictor.refresh(c.file);
    } catch (e) {
      finished = true;
      error.textContent = (e as Error).message;
      error.hidden = false;
      status.textContent = '';
      epochsBody.parentElement!.dataset.state = 'failed';
    } finally {
      run.disabled = false;
      stop.disabled = true;
    }
  };
  stop.onclick = () => void host.stopFinetune();
  modelKind.onchange = () => {
    showFields();
    if (modelKind.value === 'stored') void fillStoredCheckpoints(host, stored).catch(() => {});
  };
  dataKind.onchange = showFields;
  stored.onfocus = () => void fillStoredCheckpoints(host, stored).catch(() => {});
  showFields();
  void predictor.refresh().catch(() => {});
}

/** The panel's fields as a request; throws (shown in the panel) when a choice is incomplete. */
function readRequest(bundled: () => DataSource, setupSource: () => DataSource, setupModel: SetupModel): FinetuneRequest {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const kind = $<HTMLSelectElement>('ft-model').value;
  const model: FinetuneModelChoice =
    kind === 'random' || kind === 'random-plain'
      ? { kind: 'random', ...setupModel(), plainInit: kind === 'random-plain' }
      : checkpointChoice(kind, $<HTMLSelectElement>('ft-stored'), $<HTMLInputElement>('ft-file'));
  return {
    model,
    data: labelledData($<HTMLSelectElement>('ft-data').value, $<HTMLInputElement>('ft-files'), bundled, setupSource),
    valFraction: num('ft-val-fraction'),
    splitSeed: 0,
    trainLimit: num('ft-train-limit'),
    valLimit: num('ft-val-limit'),
    labelFraction: num('ft-label-fraction'),
    epochs: num('ft-epochs'),
    recipe: {
      batchSize: num('ft-batch'),
      baseLr: num('ft-base-lr'),
      weightDecay: num('ft-weight-decay'),
      layerDecay: num('ft-layer-decay'),
      labelSmoothing: num('ft-label-smoothing'),
      seed: num('ft-seed'),
    },
  };
}

/** The stored classifiers' list and the prediction view; `refresh(select)` re-reads the list. */
function initPrediction(host: Remote<TrainerHost>): { refresh(select?: string): Promise<void> } {
  const list = $('ft-classifiers').querySelector('tbody')!;
  const choice = $<HTMLSelectElement>('ft-predict-classifier');
  const input = $<HTMLInputElement>('ft-images');
  const drop = $('ft-drop');
  const out = $('ft-predictions');
  const error = $('ft-predict-error');

  async function refresh(select?: string): Promise<void> {
    const entries: ClassifierEntry[] = (await host.classifiers()).slice().reverse();
    const keep = select ?? choice.value;
    list.replaceChildren(...entries.map((c) => row(c)));
    if (entries.length === 0) list.append(el('tr', 'none yet'));
    choice.replaceChildren(...(entries.length ? entries.map((c) => new Option(`${c.model}, ${c.classNames.length} classes, ${c.data} — ${c.file}`, c.file)) : [new Option('(none yet)', '')]));
    if (entries.some((c) => c.file === keep)) choice.value = keep;
  }

  function row(c: ClassifierEntry): HTMLTableRowElement {
    const tr = el('tr');
    tr.dataset.file = c.file;
    const dl = el('button', 'download');
    dl.onclick = async () => download(await host.readClassifier(c.file), c.file);
    const del = el('button', 'delete');
    del.onclick = async () => {
      await host.deleteClassifier(c.file);
      await refresh();
    };
    const actions = el('td');
    actions.append(dl, ' ', del);
    tr.append(el('td', c.model), el('td', `from ${c.from}`), el('td', `${c.trainImages} images, fraction ${c.labelFraction}`),
      el('td', `top-1 ${pct(c.valTop1)}`), el('td', `${(c.bytes / 2 ** 20).toFixed(2)} MiB`), el('td', new Date(c.savedAt).toLocaleString()), actions);
    return tr;
  }

  function show(p: Prediction, file: File): HTMLElement {
    const card = el('div');
    card.className = 'prediction';
    card.dataset.image = p.image;
    const img = el('img');
    img.src = URL.createObjectURL(file);
    img.alt = p.image;
    const ol = el('ol');
    for (const t of p.top5) {
      const li = el('li', `${t.name} ${pct(t.prob)}`);
      Object.assign(li.dataset, { class: String(t.class), name: t.name, prob: String(t.prob) });
      ol.append(li);
    }
    const text = el('div');
    text.append(el('strong', p.image), ol);
    card.append(img, text);
    return card;
  }

  async function predict(files: File[]): Promise<void> {
    error.hidden = true;
    out.dataset.state = 'running';
    try {
      if (!choice.value) throw new Error('no stored classifier yet: fine-tune one first');
      const results = await host.predict(choice.value, files.map((f) => ({ name: f.name, blob: f })));
      for (const old of out.querySelectorAll('img')) URL.revokeObjectURL(old.src);
      out.replaceChildren(...results.map((p, i) => show(p, files[i]!)));
      out.dataset.state = 'done';
    } catch (e) {
      error.textContent = (e as Error).message;
      error.hidden = false;
      out.dataset.state = 'failed';
    }
  }

  input.onchange = () => void predict([...(input.files ?? [])]);
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith('image/') || /\.(jpe?g|png|webp|gif|bmp)$/i.test(f.name));
    void predict(files);
  };
  return { refresh };
}
