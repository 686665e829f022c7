/**
 * The Evaluate panel: is the encoder any good? k-NN or a linear probe on frozen features of
 * labelled images (src/eval, run by the worker's EvalHost), for the model being trained, a
 * stored checkpoint or a checkpoint file, each next to a random initialisation of the same
 * architecture. The page only collects the choices, shows progress and appends result rows;
 * every failure (no labels, no run, a running step, a file of another model) is shown in the
 * panel, never left as an uncaught rejection.
 */
import * as Comlink from 'comlink';
import type { Remote } from 'comlink';
import type { TrainerHost } from '../worker/trainer-worker.ts';
import type { EvalProgress, EvalRequest, EvalRow } from '../worker/eval-host.ts';
import type { DataSource } from '../worker/protocol.ts';
import { checkpointChoice, fillStoredCheckpoints, labelledData, pickedFiles } from './panel-sources.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function cell(text: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/**
 * Wires the panel. `bundled` is the bundled sample shard's source, `setupSource` the set-up
 * panel's current data source (URL pattern, shard files or an image folder).
 */
export function initEvalPanel(host: Remote<TrainerHost>, bundled: () => DataSource, setupSource: () => DataSource): void {
  const modelKind = $<HTMLSelectElement>('eval-model');
  const stored = $<HTMLSelectElement>('eval-stored');
  const file = $<HTMLInputElement>('eval-file');
  const dataKind = $<HTMLSelectElement>('eval-data');
  const files = $<HTMLInputElement>('eval-files');
  const valKind = $<HTMLSelectElement>('eval-val');
  const valFiles = $<HTMLInputElement>('eval-val-files');
  const run = $<HTMLButtonElement>('eval-run');
  const status = $('eval-status');
  const progress = $<HTMLProgressElement>('eval-progress');
  const error = $('eval-error');
  const body = $('eval-results').querySelector('tbody')!;
  const summary = $('eval-summary');

  const num = (id: string) => Number($<HTMLInputElement>(id).value);

  /** Shows only the fields of the chosen model and data kinds. */
  function showFields(): void {
    for (const l of document.querySelectorAll<HTMLElement>('#evaluate label[data-eval]')) l.hidden = l.dataset.eval !== modelKind.value;
    for (const l of document.querySelectorAll<HTMLElement>('#evaluate label[data-eval-data]')) l.hidden = l.dataset.evalData !== dataKind.value;
    for (const l of document.querySelectorAll<HTMLElement>('#evaluate label[data-eval-val]')) l.hidden = l.dataset.evalVal !== valKind.value;
  }

  const refreshStored = () => fillStoredCheckpoints(host, stored);
  const modelChoice = () => checkpointChoice(modelKind.value, stored, file);
  const dataSource = () => labelledData(dataKind.value, files, bundled, setupSource);

  /** Validation images from files of their own (as `webspark eval --val-data`), or none: the split. */
  function valSource(): DataSource | undefined {
    if (valKind.value !== 'files') return undefined;
    return pickedFiles(valFiles, 'choose the validation files (labelled shards or images), or use a seeded split of the data');
  }

  function request(): EvalRequest {
    const randomKind = $<HTMLSelectElement>('eval-random').value;
    const valData = valSource();
    return {
      model: modelChoice(),
      protocol: $<HTMLSelectElement>('eval-protocol').value as EvalRequest['protocol'],
      data: dataSource(),
      ...(valData ? { valData } : {}),
      trainLimit: num('eval-train-limit'),
      valLimit: num('eval-val-limit'),
      valFraction: num('eval-val-fraction'),
      splitSeed: 0,
      random: randomKind !== 'none',
      randomSeed: 1,
      randomPlainInit: randomKind === 'plain',
      epochs: num('eval-epochs'),
    };
  }

  const addRow = (r: EvalRow) => body.append(resultRow(r));
  /**
   * One run's progress handler. Progress comes through its own message channel, so it may
   * arrive after the result: rows reported late are added from the result, and anything that
   * arrives after it is ignored.
   */
  const progressOf = (added: EvalRow[], finished: () => boolean) => (p: EvalProgress) => {
    if (finished()) return;
    if (p.kind === 'row') {
      addRow(p.row);
      added.push(p.row);
    } else {
      showProgress(p, status, progress);
    }
  };

  modelKind.onchange = () => {
    showFields();
    if (modelKind.value === 'stored') void refreshStored().catch(() => {});
  };
  dataKind.onchange = showFields;
  valKind.onchange = showFields;
  stored.onfocus = () => void refreshStored().catch(() => {});
  showFields();

  run.onclick = async () => {
    error.hidden = true;
    run.disabled = true;
    progress.value = 0;
    status.textContent = 'starting…';
    body.parentElement!.dataset.state = 'running';
    const added: EvalRow[] = [];
    let finished = false;
    try {
      const report = await host.evaluate(request(), Comlink.proxy(progressOf(added, () => finished)));
      finished = true;
      for (const r of report.rows.slice(added.length)) addRow(r);
      summary.textContent =
        `${report.architecture} at ${report.inputSize} px on ${report.data}: ${report.trainImages} training and ${report.valImages} validation images, ` +
        `${report.classes} classes (chance ${pct(1 / report.classes)}).`;
      status.textContent = 'done';
      progress.max = 1;
      progress.value = 1;
      body.parentElement!.dataset.state = 'done';
    } catch (e) {
      finished = true;
      error.textContent = (e as Error).message;
      error.hidden = false;
      status.textContent = '';
      progress.value = 0;
      body.parentElement!.dataset.state = 'failed';
    } finally {
      run.disabled = false;
    }
  };
}

/** A result row; its data attributes carry the figures for tests and scripts. */
function resultRow(r: EvalRow): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.model = r.model;
  tr.dataset.protocol = r.protocol;
  tr.dataset.accuracy = String(r.accuracy);
  tr.dataset.correct = String(r.correct);
  tr.dataset.total = String(r.total);
  tr.append(
    cell(r.model),
    cell(r.protocol === 'knn' ? 'k-NN' : 'linear probe'),
    cell(pct(r.accuracy)),
    cell(`${r.correct} / ${r.total}`),
    cell(r.trainAccuracy === undefined ? '—' : pct(r.trainAccuracy)),
    cell(String(r.trainImages)),
    cell(r.seconds.toFixed(1)),
  );
  return tr;
}

/** The status line and bar for a progress report other than a finished row. */
function showProgress(p: Exclude<EvalProgress, { kind: 'row' }>, status: HTMLElement, progress: HTMLProgressElement): void {
  switch (p.kind) {
    case 'load':
      status.textContent = `reading labelled images: ${p.loaded}`;
      progress.removeAttribute('value');
      break;
    case 'features':
      status.textContent = `${p.row}: features of the ${p.side === 'train' ? 'training' : 'validation'} images ${p.done} / ${p.total}`;
      progress.max = p.total;
      progress.value = p.done;
      break;
    case 'probe':
      status.textContent = `${p.row}: linear probe epoch ${p.epoch} / ${p.epochs}`;
      progress.max = p.epochs;
      progress.value = p.epoch;
      break;
  }
}
