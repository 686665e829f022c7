/**
 * The Evaluate panel's worker logic in Node (Dawn on SwiftShader, sharp for decoding), on the
 * bundled sample shard (24 photos, 7 classes, `.cls` labels):
 * - the one-pass labelled loader splits by the seeded key hash exactly as src/eval/split.ts
 *   says, respects the limits, and keeps RGB (drops an RGBA decoder's alpha);
 * - with `only`, all images go to one side (validation data from its own source, as --val-data);
 * - unlabelled data (a flat image folder) fails with the CLI's message;
 * - the live model is refused while running, and when paused is evaluated through a copy that
 *   gives the same result as evaluating the live encoder directly, leaving it in training mode;
 * - a webspark checkpoint file of that model gives the same row again (weights + BN statistics
 *   round-trip), and an official weight file (the committed narrow ResNet-18 fixture) gives the
 *   linear probe's result of its encoder run directly (same counts and training accuracy);
 * - a weight file of another architecture fails naming the file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageFolder } from '../../src/data/folder.ts';
import type { Shard } from '../../src/data/types.ts';
import { evaluateEncoder } from '../../src/eval/evaluate.ts';
import { copyOfModel, modelFromFile } from '../../src/eval/eval-models.ts';
import { extractFeatures } from '../../src/eval/features.ts';
import { loadLabelledSplit, toRgb } from '../../src/eval/labelled-images.ts';
import { isValKey } from '../../src/eval/split.ts';
import { createSparK, type SparKConfig } from '../../src/models/registry.ts';
import { encodeCheckpoint } from '../../src/train/checkpoint.ts';
import { SharpDecoder } from '../../src/platform/node/data-decode.ts';
import { nodeShards } from '../../src/platform/node/data-sources.ts';
import { Rng } from '../../src/util/rng.ts';
import { EvalHost, RUNNING_REFUSAL, type EvalEnv, type EvalRequest } from '../../src/worker/eval-host.ts';
import type { DataSource } from '../../src/worker/protocol.ts';
import { TINY_RESNET } from '../../src/models/zoo.ts';
import { useContext } from '../helpers/gpu.ts';

const SHARD = new URL('../../public/data/sample-000000.tar', import.meta.url).pathname;
const FIXTURE = new URL('../fixtures/model/resnet18s.weights.safetensors', import.meta.url).pathname;
// Residual branches not zeroed: a fresh timm-initialised ResNet's features barely vary (docs/evaluation.md).
const TINY: SparKConfig = { model: 'resnet18', resnet: TINY_RESNET, inputSize: 64, decoderWidth: 32, zeroInitLastBn: false };
const BUNDLED: DataSource = { kind: 'url', pattern: SHARD, label: 'bundled sample shard' };

/** The .cls of every sample in the shard, by key. */
function shardLabels(): Map<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'webspark-evalhost-'));
  try {
    execFileSync('tar', ['-xf', SHARD, '-C', dir]);
    const out = new Map<string, number>();
    for (const f of readdirSync(dir)) if (f.endsWith('.cls')) out.set(f.slice(0, -4), Number(readFileSync(join(dir, f), 'utf8')));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bundled(): Promise<Shard[]> {
  return (await nodeShards(SHARD)).shards;
}

describe('Evaluate panel host (src/worker/eval-host.ts, src/eval/labelled-images.ts)', () => {
  const ctx = useContext();
  let shards: Shard[];
  beforeAll(async () => {
    shards = await bundled();
  });

  it('splits by the seeded key hash in one pass, with the .cls labels, within the limits', async () => {
    const truth = shardLabels();
    expect(truth.size).toBe(24);
    const { train, val } = await loadLabelledSplit(shards, new SharpDecoder(), { size: 32, valFraction: 0.25, seed: 3, name: 'sample' });
    expect(train.keys.length + val.keys.length).toBe(24);
    for (const k of train.keys) expect(isValKey(k, 3, 0.25)).toBe(false);
    for (const k of val.keys) expect(isValKey(k, 3, 0.25)).toBe(true);
    train.keys.forEach((k, i) => expect(train.labels[i]).toBe(truth.get(k)));
    val.keys.forEach((k, i) => expect(val.labels[i]).toBe(truth.get(k)));
    expect(train.images.length).toBe(train.keys.length * 32 * 32 * 3);
    const limited = await loadLabelledSplit(shards, new SharpDecoder(), { size: 32, valFraction: 0.25, seed: 3, name: 'sample', trainLimit: 5, valLimit: 2 });
    expect(limited.train.keys).toEqual(train.keys.slice(0, 5));
    expect(limited.val.keys).toEqual(val.keys.slice(0, 2));
    expect(toRgb(Uint8Array.of(1, 2, 3, 255, 4, 5, 6, 0), 4)).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6));
    // Data that is one side of a split it gives itself: everything on that side, in shard order.
    const onlyVal = await loadLabelledSplit(shards, new SharpDecoder(), { size: 32, valFraction: 0.25, seed: 3, name: 'sample', only: 'val', valLimit: 5 });
    expect(onlyVal.train.keys).toEqual([]);
    expect(onlyVal.val.keys).toEqual([...truth.keys()].sort().slice(0, 5));
  });

  it('fails on unlabelled images with the CLI message, and when the split leaves a side empty', async () => {
    // A flat folder (no class folders) of the shard's images: no labels.
    const flat = imageFolder(
      [...Array(4).keys()].map((i) => ({ path: `img${i}.png`, read: async () => new Uint8Array(0) })),
      { name: 'my-images' },
    );
    await expect(loadLabelledSplit(flat.shards, new SharpDecoder(), { size: 32, valFraction: 0.2, seed: 0, name: 'folder: my-images' })).rejects.toThrow(
      'folder: my-images: no labelled images found (4 images without a label: give .cls entries, class folders or a label column)',
    );
    await expect(loadLabelledSplit(shards, new SharpDecoder(), { size: 32, valFraction: 0.2, seed: 0, name: 'sample', trainLimit: 1, valLimit: 1, parallel: 1 }).then(() => 'ok')).resolves.toBe('ok');
    await expect(loadLabelledSplit(await bundled(), new SharpDecoder(), { size: 32, valFraction: 0.001, seed: 0, name: 'sample' })).rejects.toThrow(/no validation images/);
  });

  it('evaluates the paused live model through a copy, a checkpoint of it, a random init, and refuses while running', async () => {
    const c = ctx();
    const live = createSparK(c, new Rng(7), TINY);
    // Non-default BatchNorm statistics, so a copy that lost them would give other features.
    const state = live.stateDict();
    const rng = new Rng(1);
    for (const [key, v] of state) {
      if (v.kind !== 'int' && key.endsWith('running_var')) c.gpu.write(v.tensor.buffer, Float32Array.from({ length: v.tensor.size }, () => rng.uniform(0.2, 3)));
      if (v.kind !== 'int' && key.endsWith('running_mean')) c.gpu.write(v.tensor.buffer, Float32Array.from({ length: v.tensor.size }, () => rng.uniform(-1, 1)));
    }
    let liveState: 'running' | 'paused' = 'running';
    const stored = new Map<string, Uint8Array>();
    const env: EvalEnv = {
      gpu: async () => c.gpu,
      live: () => ({ model: live, config: TINY, state: liveState, step: 12 }),
      readStored: async (file) => stored.get(file) ?? Promise.reject(new Error(`${file}: not stored`)),
      shards: () => shards,
      decoder: () => new SharpDecoder(),
    };
    const host = new EvalHost();
    const request: EvalRequest = { model: { kind: 'current' }, protocol: 'knn', data: BUNDLED, trainLimit: 100, valLimit: 100, valFraction: 0.3, splitSeed: 0, random: true, randomSeed: 7 };
    await expect(host.evaluate(env, request)).rejects.toThrow(RUNNING_REFUSAL);
    liveState = 'paused';
    const progress: string[] = [];
    const report = await host.evaluate(env, request, (p) => progress.push(p.kind));
    expect(live.training).toBe(true);
    expect(report.rows.map((r) => r.model)).toEqual(['model being trained (step 12)', 'random init (seed 7)']);
    expect(report.trainImages + report.valImages).toBe(24);
    expect(report.classes).toBe(7);
    for (const r of report.rows) {
      expect(r.total).toBe(report.valImages);
      expect(r.trainImages).toBe(report.trainImages);
      expect(r.featureDim).toBe(TINY_RESNET.planes![3]);
      expect(r.accuracy).toBeCloseTo(r.correct / r.total, 12);
    }
    expect(progress).toContain('load');
    expect(progress).toContain('features');
    expect(progress.filter((k) => k === 'row')).toHaveLength(2);

    // The same evaluation on the live encoder itself: identical predictions, so identical counts.
    const { train, val } = await loadLabelledSplit(shards, new SharpDecoder(), { size: 64, valFraction: 0.3, seed: 0, name: 'sample' });
    const direct = await evaluateEncoder(c, live.encoder, train, val, { protocol: 'knn', size: 64 });
    expect(report.rows[0]!.correct).toBe(direct.correct);
    // Counts are coarse (7 val images): the copy's features must equal the live model's, bit for
    // bit (same weights, same kernels, same order).
    const liveFeatures = await extractFeatures(c, live.encoder, train.images, train.labels, 64);
    const copy = await copyOfModel(c, live, TINY);
    const copyFeatures = await extractFeatures(c, copy.encoder, train.images, train.labels, 64);
    expect(copyFeatures.features).toEqual(liveFeatures.features);
    live.train();

    // A checkpoint of the live model (as the trainer writes it) evaluates the same.
    const parts = await encodeCheckpoint(live, null, { config: TINY, run: {} });
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (bytes.set(p, off), off + p.length), 0);
    stored.set('run-step-12.safetensors', bytes);
    const fromStore = await host.evaluate(env, { ...request, model: { kind: 'stored', file: 'run-step-12.safetensors' }, random: false });
    expect(fromStore.rows).toHaveLength(1);
    expect(fromStore.rows[0]!.model).toBe('run-step-12.safetensors');
    expect(fromStore.rows[0]!.correct).toBe(direct.correct);
    const fileModel = modelFromFile(c, bytes, 'run-step-12.safetensors').model;
    expect((await extractFeatures(c, fileModel.encoder, train.images, train.labels, 64)).features).toEqual(liveFeatures.features);

    // The official narrow ResNet-18 fixture (official keys, no input size: 64 px) as a picked file.
    const official = await host.evaluate(env, { ...request, model: { kind: 'file', name: 'resnet18s.weights.safetensors', blob: new Blob([readFileSync(FIXTURE)]) }, protocol: 'linear', epochs: 3, random: false });
    expect(official.inputSize).toBe(64);
    expect(official.rows[0]!.total).toBe(official.valImages);
    // The host's result is the linear probe of that file's encoder: the same probe run directly
    // (same split, seed and epochs) gives the same counts and training accuracy.
    const fixtureModel = modelFromFile(c, new Uint8Array(readFileSync(FIXTURE)), 'resnet18s.weights.safetensors').model;
    const probe = await evaluateEncoder(c, fixtureModel.encoder, train, val, { protocol: 'linear', size: 64, linear: { seed: 0, epochs: 3 } });
    expect(official.rows[0]!.correct).toBe(probe.correct);
    expect(official.rows[0]!.trainAccuracy).toBe(probe.trainAccuracy);
  });

  it('takes the validation images from a source of their own (as --val-data)', async () => {
    const c = ctx();
    const live = createSparK(c, new Rng(2), TINY);
    const env: EvalEnv = { gpu: async () => c.gpu, live: () => ({ model: live, config: TINY, state: 'finished', step: 5 }), readStored: async () => new Uint8Array(0), shards: () => shards, decoder: () => new SharpDecoder() };
    const report = await new EvalHost().evaluate(env, {
      model: { kind: 'current' }, protocol: 'knn', data: BUNDLED, valData: { ...BUNDLED, label: 'val copy' }, trainLimit: 100, valLimit: 10, valFraction: 0.2, splitSeed: 0, random: false, randomSeed: 1,
    });
    expect([report.trainImages, report.valImages]).toEqual([24, 10]);
    expect(report.rows[0]!.total).toBe(10);
    expect(report.data).toBe('bundled sample shard, validation: val copy');
  });

  it('names the file when its weights are not of the architecture it claims', async () => {
    const c = ctx();
    const other = createSparK(c, new Rng(0), { ...TINY, resnet: { ...TINY_RESNET, planes: [8, 12, 16, 32] } });
    const parts = await encodeCheckpoint(other, null, { config: TINY, run: {} });
    const env: EvalEnv = { gpu: async () => c.gpu, live: () => null, readStored: async () => new Uint8Array(0), shards: () => shards, decoder: () => new SharpDecoder() };
    const base: EvalRequest = { model: { kind: 'file', name: 'wrong.safetensors', blob: new Blob(parts as BlobPart[]) }, protocol: 'knn', data: BUNDLED, trainLimit: 10, valLimit: 10, valFraction: 0.3, splitSeed: 0, random: true, randomSeed: 1 };
    await expect(new EvalHost().evaluate(env, base)).rejects.toThrow(/wrong\.safetensors: its weights do not fit/);
    await expect(new EvalHost().evaluate(env, { ...base, model: { kind: 'current' } })).rejects.toThrow(/no model being trained/);
    await expect(new EvalHost().evaluate(env, { ...base, trainLimit: 0 })).rejects.toThrow(/training image limit/);
  });

});
