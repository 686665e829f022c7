/**
 * What the Evaluate and Fine-tune panels both ask for: a model's weights (the model being
 * trained, a stored checkpoint, a checkpoint file) and labelled data (the bundled sample shard,
 * the set-up panel's data, picked files), with the same messages when a choice is incomplete;
 * and a file download of bytes the worker sends.
 */
import type { Remote } from 'comlink';
import type { TrainerHost } from '../worker/trainer-worker.ts';
import type { EvalModelChoice } from '../worker/eval-host.ts';
import type { DataSource } from '../worker/protocol.ts';
import { modelNameOf } from '../models/zoo.ts';

/** The weights a model select (`current`, `stored`, `file`) and its two fields name. */
export function checkpointChoice(kind: string, stored: HTMLSelectElement, file: HTMLInputElement): EvalModelChoice {
  if (kind === 'stored') {
    if (!stored.value) throw new Error('no stored checkpoint chosen: train and pause a run first (a checkpoint is written), or pick a checkpoint file');
    return { kind: 'stored', file: stored.value };
  }
  if (kind === 'file') {
    const f = file.files?.[0];
    if (!f) throw new Error('choose a checkpoint file (.safetensors or .pth) first');
    return { kind: 'file', name: f.name, blob: f };
  }
  return { kind: 'current' };
}

/** Picked files as a data source; `what` says what to pick when there are none. */
export function pickedFiles(input: HTMLInputElement, what: string): DataSource {
  const picked = [...(input.files ?? [])];
  if (picked.length === 0) throw new Error(what);
  return { kind: 'files', files: picked, label: `files: ${picked.map((f) => f.name).join(', ')}` };
}

/** The labelled data a data select (`bundled`, `setup`, `files`) and its file field name. */
export function labelledData(kind: string, files: HTMLInputElement, bundled: () => DataSource, setupSource: () => DataSource): DataSource {
  if (kind === 'setup') return setupSource();
  if (kind === 'files') return pickedFiles(files, 'choose labelled shard files (.tar with .cls entries, .parquet with a label column) or images first');
  return bundled();
}

/** Fills a select with the stored checkpoints, newest first (the store's manifest), keeping the choice. */
export async function fillStoredCheckpoints(host: Remote<TrainerHost>, stored: HTMLSelectElement): Promise<void> {
  const m = await host.manifest();
  const keep = stored.value;
  const options = m.runs.flatMap((r) => r.checkpoints.map((c) => new Option(`${modelNameOf(r.config)} — step ${c.step} / ${r.config.totalSteps}`, c.file)));
  options.reverse();
  stored.replaceChildren(...(options.length ? options : [new Option('(no stored checkpoint yet)', '')]));
  if (options.some((o) => o.value === keep)) stored.value = keep;
}

/** Offers `bytes` as a file download named `name`. */
export function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
