#!/usr/bin/env node
// Ships a checkpoint of `webspark pretrain` as the demo model, with everything said about it:
//
//   node --import tsx tools/ship-demo-model.ts runs/demo-resnet18-128/checkpoint-000000160.safetensors
//
// 1. Packs the model weights (no optimizer state) into public/models/demo-model.safetensors:
//    float16 for every weight of 2 or more dimensions, float32 for the 1-D tensors (biases, norm
//    scales, BatchNorm running statistics: small, and running variances lose precision in f16),
//    with the checkpoint's `webspark.config` and a model card (`webspark.card`, src/models/demo-model.ts).
//    Refused over --max-mb (32 MB).
// 2. Measures the held-out loss ON THE SHIPPED WEIGHTS: the official masked-patch loss in
//    inference mode, mask ratio 0.6, seeds 0..7 (one random mask per photo and seed), every
//    held-out photo of the corpus at the model's input size, through the code of
//    `webspark reconstruct --json` (loadModelFile, seededMasks, reconstructImages).
// 3. Copies the held-out photos into public/demo/heldout/ (<key>.jpg, photos.json and CREDITS.md),
//    draws docs/images/demo-model-loss.png (from the run's metrics.jsonl) and
//    docs/images/demo-model-heldout.png, and rewrites the shipped-model section of docs/demo-model.md.
// The model file is written last, through a temporary file, so a failure leaves the old one.
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defineOptions, parseOptions } from '../src/cli/args.ts';
import { loadModelFile, reconstructImages, seededMasks } from '../src/cli/reconstruct.ts';
import { readTar } from '../src/data/tar.ts';
import { CONFIG_KEY } from '../src/io/checkpoint-file.ts';
import { readSafetensors, toFloat32, writeSafetensors, type TensorInput } from '../src/io/safetensors.ts';
import { officialModelArrays } from '../src/io/export.ts';
import { CARD_KEY, DEMO_MODEL_PATH, DEMO_PHOTOS_DIR, DEMO_PHOTOS_LIST, type DemoModelCard, type DemoPhoto, type HeldOutLoss } from '../src/models/demo-model.ts';
import { createNodeGpu } from '../src/platform/node/gpu.ts';
import { loadSquareRgb, writeGridPng } from '../src/platform/node/images.ts';
import { Context } from '../src/tensor/context.ts';
import { docSection, readLossCurve, rewriteDocSection, writeLossCurvePng } from './demo-model-figures.ts';

const OPTIONS = defineOptions({
  corpus: { type: 'string', default: '.cache/photo-corpus', help: 'the photo corpus (corpus.json, heldout/*.tar) of tools/make-photo-corpus.ts' },
  public: { type: 'string', default: 'public', help: 'where models/ and demo/heldout/ go' },
  docs: { type: 'string', default: 'docs', help: 'demo-model.md and images/ go here' },
  hardware: { type: 'string', default: 'CPU stop-gap: Mesa lavapipe on a 2-core machine', help: 'where it was trained' },
  title: { type: 'string', help: 'one line naming the model (default: "SparK <model>, <size> px", plus "CPU stop-gap" when --hardware says so)' },
  command: { type: 'string', help: 'the pretrain command that made the checkpoint (default: rebuilt from its config)' },
  seeds: { type: 'integer', min: 1, max: 64, default: 8, help: 'masks per photo (seeds 0..N-1)' },
  'mask-ratio': { type: 'number', min: 0, max: 1, default: 0.6, help: 'mask ratio of the held-out loss' },
  'grid-photos': { type: 'integer', min: 1, max: 46, default: 6, help: 'held-out photos in the reconstruction grid' },
  'max-mb': { type: 'number', min: 0, default: 32, help: 'refuse a shipped file larger than this (10^6 bytes)' },
});

/** F16 keeps 11 significant bits up to 65504: a weight outside that range stays F32. */
const F16_MAX = 65504;

/** The shipped tensors: model weights only, F16 where it is safe (see the header). */
export function shippedTensors(checkpoint: Uint8Array): { tensors: TensorInput[]; metadata: Record<string, string>; storage: string } {
  const st = readSafetensors(checkpoint);
  const arrays = new Map([...st.tensors].map(([k, e]) => [k, { shape: e.shape, data: toFloat32(e), dtype: e.dtype }]));
  const kept = officialModelArrays(arrays);
  const tensors: TensorInput[] = [];
  let f32 = 0;
  for (const [name, a] of kept) {
    const e = arrays.get(name)!;
    if (e.dtype !== 'F32') tensors.push({ name, dtype: e.dtype, shape: e.shape, data: st.tensors.get(name)!.data });
    else if (e.shape.length >= 2 && a.data.every((v) => Math.abs(v) <= F16_MAX)) tensors.push({ name, dtype: 'F16', shape: e.shape, data: a.data as Float32Array });
    else {
      tensors.push({ name, dtype: 'F32', shape: e.shape, data: a.data as Float32Array });
      if (e.shape.length >= 2) f32++;
    }
  }
  if (!st.metadata[CONFIG_KEY]) throw new Error(`the checkpoint has no ${CONFIG_KEY} metadata: not a checkpoint of \`webspark pretrain\``);
  const storage = `float16 weights, float32 1-D tensors${f32 ? ` and ${f32} weights outside the float16 range` : ''}`;
  return { tensors, metadata: { [CONFIG_KEY]: st.metadata[CONFIG_KEY]!, 'webspark.run': st.metadata['webspark.run'] ?? '{}', format: 'pt' }, storage };
}

export interface HeldOutPhoto {
  key: string;
  jpeg: Uint8Array;
  credit: Record<string, unknown>;
}

/** The held-out photos of the corpus (every heldout/*.tar), sorted by key. */
export async function readHeldOut(corpus: string): Promise<HeldOutPhoto[]> {
  const dir = join(corpus, 'heldout');
  if (!existsSync(dir)) throw new Error(`${dir} does not exist: build the corpus with \`node --import tsx tools/make-photo-corpus.ts\``);
  const jpegs = new Map<string, Uint8Array>();
  const credits = new Map<string, Record<string, unknown>>();
  for (const shard of readdirSync(dir).filter((f) => f.endsWith('.tar')).sort()) {
    for await (const e of readTar(createReadStream(join(dir, shard)), shard)) {
      if (e.type !== 'file') continue;
      const key = e.name.replace(/\.[^.]+$/, '');
      if (e.name.endsWith('.jpg')) jpegs.set(key, e.data.slice());
      else if (e.name.endsWith('.json')) credits.set(key, JSON.parse(new TextDecoder().decode(e.data)) as Record<string, unknown>);
    }
  }
  if (jpegs.size === 0) throw new Error(`${dir} holds no held-out photos`);
  return [...jpegs.keys()].sort().map((key) => {
    const credit = credits.get(key);
    if (!credit) throw new Error(`held-out photo ${key} has no credits (${key}.json) in ${dir}`);
    return { key, jpeg: jpegs.get(key)!, credit };
  });
}

/** The held-out loss of the model file at `modelPath`, and the seed-0 grid tiles of the first `gridPhotos` photos. */
export async function heldOutLoss(modelPath: string, photos: HeldOutPhoto[], seeds: number, maskRatio: number, gridPhotos: number) {
  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const { model, config } = loadModelFile(ctx, modelPath);
    const rgb = await Promise.all(photos.map((p) => loadSquareRgb(p.jpeg, config.inputSize)));
    const perSeed: number[] = [];
    let tiles: Uint8Array[] = [];
    for (let seed = 0; seed < seeds; seed++) {
      const r = await reconstructImages(model, rgb, seededMasks(model, rgb.length, seed, maskRatio));
      perSeed.push(r.loss);
      if (seed === 0) tiles = r.tiles.slice(0, 4 * gridPhotos);
      process.stdout.write(`held-out loss, seed ${seed}: ${r.loss.toFixed(6)}\n`);
    }
    const heldOut: HeldOutLoss = {
      mean: perSeed.reduce((a, b) => a + b, 0) / perSeed.length,
      photos: photos.length,
      seeds: perSeed.map((_, i) => i),
      maskRatio,
      inputSize: config.inputSize,
      perSeed,
    };
    return { heldOut, tiles, inputSize: config.inputSize };
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}

/** The run's wall time: its `started`/`ended` files (ISO times), else the sum of its step times. */
function wallTime(runDir: string, points: { stepMs?: number }[]): { seconds: number | null; source: string } {
  const read = (f: string) => (existsSync(join(runDir, f)) ? Date.parse(readFileSync(join(runDir, f), 'utf8').trim()) : NaN);
  const started = read('started');
  const ended = read('ended');
  if (Number.isFinite(started) && Number.isFinite(ended)) return { seconds: (ended - started) / 1000, source: "the run's started/ended times" };
  const ms = points.reduce((a, p) => a + (p.stepMs ?? 0), 0);
  return ms > 0 ? { seconds: ms / 1000, source: 'the sum of its step times, pipeline compiles included' } : { seconds: null, source: 'not recorded' };
}

async function main(): Promise<void> {
  const args = parseOptions(OPTIONS, process.argv.slice(2), { helpHint: 'the header of tools/ship-demo-model.ts', positionals: 'CHECKPOINT' });
  const checkpoint = args.positionals[0];
  if (!checkpoint || args.positionals.length > 1) throw new Error('give one checkpoint: node --import tsx tools/ship-demo-model.ts CHECKPOINT');
  const [publicDir, docsDir, corpus] = [args.get('public'), args.get('docs'), args.get('corpus')].map((p) => resolve(p));
  const runDir = dirname(resolve(checkpoint));

  // 1. The shipped bytes, checked before anything is written.
  const { tensors, metadata, storage } = shippedTensors(new Uint8Array(readFileSync(checkpoint)));
  const config = JSON.parse(metadata[CONFIG_KEY]!) as { model: string; inputSize: number; decoderWidth?: number };
  const run = JSON.parse(metadata['webspark.run']!) as { step?: number; train?: { batchSize?: number; seed?: number; totalSteps?: number } };
  const steps = run.step ?? 0;
  const batchSize = run.train?.batchSize ?? 0;
  const decoderWidth = config.decoderWidth ?? 768;
  const draft = writeSafetensors(tensors, metadata);
  const maxBytes = args.get('max-mb') * 1e6;
  if (draft.length > maxBytes) {
    throw new Error(`${checkpoint}: the shipped file would be ${(draft.length / 1e6).toFixed(1)} MB, over the ${args.get('max-mb')} MB allowed: ` +
      'a narrower decoder (--decoder-width) or a smaller encoder fits');
  }

  // 2. The held-out loss of exactly these weights.
  const docPath = join(docsDir, 'demo-model.md');
  if (!existsSync(docPath)) throw new Error(`${docPath} does not exist: --docs names the folder of demo-model.md`);
  const photos = await readHeldOut(corpus);
  const modelPath = join(publicDir, DEMO_MODEL_PATH);
  mkdirSync(dirname(modelPath), { recursive: true });
  const draftPath = `${modelPath}.tmp`;
  writeFileSync(draftPath, draft);
  let measured: Awaited<ReturnType<typeof heldOutLoss>>;
  try {
    measured = await heldOutLoss(draftPath, photos, args.get('seeds'), args.get('mask-ratio'), Math.min(args.get('grid-photos'), photos.length));
  } catch (err) {
    rmSync(draftPath, { force: true });
    throw err;
  }

  // 3. The card, the photos, the figures, the doc; the model file last.
  const manifest = JSON.parse(readFileSync(join(corpus, 'corpus.json'), 'utf8')) as { train: { photos: number; shards: string[] }; heldout: { photos: number }; fingerprint: string };
  const metricsText = existsSync(join(runDir, 'metrics.jsonl')) ? readFileSync(join(runDir, 'metrics.jsonl'), 'utf8') : '';
  const points = readLossCurve(metricsText, steps - 1);
  const stepTimes = metricsText.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { step: number; stepMs?: number }).filter((m) => m.step < steps);
  const wall = wallTime(runDir, stepTimes);
  const stopGap = /stop-gap/i.test(args.get('hardware'));
  const card: DemoModelCard = {
    title: args.get('title') ?? `SparK ${config.model}, ${config.inputSize} px${stopGap ? ', CPU stop-gap' : ''}`,
    model: config.model,
    inputSize: config.inputSize,
    decoderWidth,
    steps,
    batchSize,
    data: `the train split of the webspark photo corpus: ${manifest.train.photos} photos from Debian packages ` +
      `(${manifest.heldout.photos} more held out, never trained on; corpus ${manifest.fingerprint.slice(0, 12)})`,
    hardware: args.get('hardware'),
    wallSeconds: wall.seconds,
    wallSource: wall.source,
    heldOut: measured.heldOut,
    checkpoint: basename(checkpoint),
    storage,
  };
  const shipped = writeSafetensors(tensors, { ...metadata, [CARD_KEY]: JSON.stringify(card) });
  if (shipped.length > maxBytes) throw new Error(`the shipped file with its card is ${(shipped.length / 1e6).toFixed(1)} MB, over ${args.get('max-mb')} MB`);

  writeHeldOutPhotos(join(publicDir, DEMO_PHOTOS_DIR), join(publicDir, DEMO_PHOTOS_LIST), photos);
  mkdirSync(join(docsDir, 'images'), { recursive: true });
  await writeLossCurvePng(join(docsDir, 'images', 'demo-model-loss.png'), points, card.heldOut.mean, card.title);
  await writeGridPng(join(docsDir, 'images', 'demo-model-heldout.png'), measured.tiles, measured.inputSize, 4);
  const command = args.get('command') ??
    `npx webspark pretrain --data ${corpus === resolve('.cache/photo-corpus') ? '.cache/photo-corpus' : corpus}/train --model ${config.model} ` +
      `--decoder-width ${decoderWidth} --input-size ${config.inputSize} --batch-size ${batchSize} --steps ${run.train?.totalSteps ?? steps} --seed ${run.train?.seed ?? 0}`;
  rewriteDocSection(docPath, docSection(card, shipped.length, command, `node --import tsx tools/ship-demo-model.ts ${checkpoint}`));
  writeFileSync(draftPath, shipped);
  renameSync(draftPath, modelPath);
  process.stdout.write(`wrote ${modelPath} (${(statSync(modelPath).size / 1e6).toFixed(1)} MB, ${storage}); held-out loss ${card.heldOut.mean.toFixed(4)}\n`);
}

/** public/demo/heldout: the photos and their list with credits (stale photos removed). */
function writeHeldOutPhotos(dir: string, listPath: string, photos: HeldOutPhoto[]): void {
  mkdirSync(dir, { recursive: true });
  const keep = new Set(photos.map((p) => `${p.key}.jpg`));
  for (const f of readdirSync(dir)) if (f.endsWith('.jpg') && !keep.has(f)) rmSync(join(dir, f));
  const list: DemoPhoto[] = photos.map((p) => {
    writeFileSync(join(dir, `${p.key}.jpg`), p.jpeg);
    const c = p.credit;
    return { key: p.key, file: String(c.file ?? ''), package: String(c.package ?? ''), licence: String(c.licence ?? ''), author: String(c.author ?? '') };
  });
  writeFileSync(listPath, `${JSON.stringify(list, null, 1)}\n`);
  const rows = list.map((p) => `| ${p.key}.jpg | ${p.package} | \`${p.file}\` | ${p.licence} | ${p.author.replace(/\|/g, '\\|')} |`);
  writeFileSync(join(dir, 'CREDITS.md'), [
    '# Credits of the demo\'s held-out photos',
    '',
    'These photos come from Debian packages (the webspark photo corpus, tools/make-photo-corpus.ts; every photo of',
    'the corpus is credited in docs/photo-corpus-credits.md). They are held out: the demo model was never trained on them.',
    'Each is resized so its shorter side is 256 px and re-encoded as JPEG.',
    '',
    '| file | package | file in the package | licence | author |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`ship-demo-model: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
