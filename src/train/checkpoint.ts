/**
 * A checkpoint is one safetensors file: the model under the official SparK keys, the
 * optimizer's moments under `optimizer.<param>.exp_avg[_sq]` and its step state, and metadata
 * (the run config, step, epoch, data cursor, random state) as JSON strings. The official code
 * and timm read the model keys directly; the extra keys are ignored with strict=False.
 */
import { writeSafetensorsParts, type Dtype } from '../io/safetensors.ts';
import { loadStateDict, readStateDict, type NamedArray } from '../io/state-dict.ts';
import { CONFIG_KEY } from '../io/checkpoint-file.ts';
import type { Module } from '../nn/module.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { SparKConfig } from '../models/registry.ts';

export const OPTIMIZER_PREFIX = 'optimizer.';

/** What a checkpoint needs of an optimizer: its state tensors by name (Lamb, LayerwiseAdamW). */
export interface OptimizerState {
  stateTensors(): Map<string, Tensor>;
}

export interface CheckpointMeta {
  config: SparKConfig;
  /** Anything else the trainer needs to resume exactly (step, epoch, cursor, rng states). */
  run: Record<string, unknown>;
  /** Further metadata entries (a classifier's class names). */
  extra?: Record<string, string>;
}

/** Serialises model + optimizer + metadata into safetensors parts (header first). */
export async function encodeCheckpoint(model: Module, optimizer: OptimizerState | null, meta: CheckpointMeta): Promise<Uint8Array[]> {
  const entries: { name: string; dtype: Dtype; shape: number[]; data: Float32Array | BigInt64Array }[] = [];
  for (const [name, v] of await readStateDict(model)) {
    const isCounter = name.endsWith('num_batches_tracked');
    entries.push(
      isCounter
        ? { name, dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(Math.round(v.data[0]!))) }
        : { name, dtype: 'F32', shape: [...v.shape], data: v.data },
    );
  }
  if (optimizer) {
    const reads = [...optimizer.stateTensors()].map(async ([name, t]) => ({ name: OPTIMIZER_PREFIX + name, shape: [...t.shape], data: await t.read() }));
    for (const e of await Promise.all(reads)) entries.push({ ...e, dtype: 'F32' });
  }
  return writeSafetensorsParts(entries, { ...meta.extra, [CONFIG_KEY]: JSON.stringify(meta.config), 'webspark.run': JSON.stringify(meta.run), format: 'pt' });
}

/** Loads model and optimizer state from decoded arrays; returns the run metadata. */
export function restoreCheckpoint(
  arrays: ReadonlyMap<string, NamedArray>,
  metadata: Record<string, string>,
  model: Module,
  optimizer: OptimizerState | null,
): Record<string, unknown> {
  const modelArrays = new Map<string, NamedArray>();
  const optimizerArrays = new Map<string, NamedArray>();
  for (const [k, v] of arrays) {
    if (k.startsWith(OPTIMIZER_PREFIX)) optimizerArrays.set(k.slice(OPTIMIZER_PREFIX.length), v);
    else modelArrays.set(k, v);
  }
  loadStateDict(model, modelArrays);
  if (optimizer) {
    for (const [name, t] of optimizer.stateTensors()) {
      const v = optimizerArrays.get(name);
      if (!v) throw new Error(`the checkpoint has no optimizer state '${name}': it cannot resume this run exactly`);
      if (v.data.length !== t.size) throw new Error(`optimizer state '${name}' has ${v.data.length} values, expected ${t.size}`);
      model.ctx.gpu.write(t.buffer, v.data);
    }
  }
  return metadata['webspark.run'] ? (JSON.parse(metadata['webspark.run']) as Record<string, unknown>) : {};
}
