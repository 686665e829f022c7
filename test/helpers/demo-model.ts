/**
 * Small stand-ins for the demo model's inputs: a `webspark pretrain`-style checkpoint (the narrow
 * ResNet-18 fixture at 64 px, with webspark's config and run metadata and an optimizer tensor)
 * in a run folder with metrics.jsonl and started/ended times, and a photo corpus with a few
 * held-out JPEGs and their credits.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEY, configFromMetadata } from '../../src/io/checkpoint-file.ts';
import { readSafetensors, writeSafetensors, type TensorInput } from '../../src/io/safetensors.ts';
import { gnuTar, jpeg } from '../data/helpers.ts';

export const FIXTURE_WEIGHTS = fileURLToPath(new URL('../fixtures/model/resnet18s.weights.safetensors', import.meta.url));

/** Writes `<dir>/checkpoint-000000003.safetensors` (3 steps at batch 2) with its run files; returns its path. */
export function makeRun(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const st = readSafetensors(new Uint8Array(readFileSync(FIXTURE_WEIGHTS)));
  const tensors: TensorInput[] = [...st.tensors.values()].map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: e.data.slice() }));
  tensors.push({ name: 'optimizer.mask_tokens.0.exp_avg', shape: [4], data: new Float32Array(4).fill(1) });
  const config = { ...configFromMetadata(st.metadata), inputSize: 64 };
  const run = { step: 3, epoch: 0, train: { batchSize: 2, totalSteps: 3, seed: 0 } };
  const path = join(dir, 'checkpoint-000000003.safetensors');
  writeFileSync(path, writeSafetensors(tensors, { [CONFIG_KEY]: JSON.stringify(config), 'webspark.run': JSON.stringify(run), format: 'pt' }));
  const metrics = [1.0, 0.9, 0.8, 0.7].map((loss, step) => JSON.stringify({ step, loss, stepMs: 1000 }));
  writeFileSync(join(dir, 'metrics.jsonl'), `${metrics.join('\n')}\n`);
  writeFileSync(join(dir, 'started'), '2026-01-01T00:00:00Z\n');
  writeFileSync(join(dir, 'ended'), '2026-01-01T00:01:30Z\n');
  return path;
}

/** A corpus folder with `n` held-out photos (96 x 64 JPEGs) in heldout/ and a corpus.json. */
export async function makeCorpus(dir: string, n: number): Promise<string[]> {
  const held = join(dir, 'heldout');
  mkdirSync(held, { recursive: true });
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `pkg-photo${i}`;
    keys.push(key);
    writeFileSync(join(held, `${key}.jpg`), await jpeg(96, 64, i + 1));
    writeFileSync(join(held, `${key}.json`), JSON.stringify({ key, package: 'pkg', file: `/usr/share/pkg/photo${i}.jpg`, licence: 'CC0-1.0', author: `Author ${i}` }));
  }
  gnuTar(held, ['-cf', 'photos-heldout-000000.tar', ...keys.flatMap((k) => [`${k}.jpg`, `${k}.json`])]);
  writeFileSync(join(dir, 'corpus.json'), JSON.stringify({ fingerprint: 'f'.repeat(64), train: { photos: 10, shards: ['photos-train-000000.tar'] }, heldout: { photos: n } }));
  return keys;
}
