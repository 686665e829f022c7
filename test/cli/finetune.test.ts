/**
 * `npx webspark finetune` and `npx webspark predict` end to end, on a 4-class ImageFolder of
 * 32-px planted-colour PNGs, from the fixtures' SparK checkpoint (a narrow ResNet-18 under
 * official `sparse_encoder.sp_cnn.` keys): metrics.jsonl per epoch, checkpoints, a resumed run
 * that ends byte-identical to the uninterrupted one, classifier.safetensors with timm keys and
 * class names, and predict's --json output equal to the classifier run in-process.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readClassifier } from '../../src/finetune/weights.ts';
import { Classifier } from '../../src/finetune/classifier.ts';
import { predictImages, type Prediction } from '../../src/finetune/predict.ts';
import { loadStateDict } from '../../src/io/state-dict.ts';
import { Rng } from '../../src/util/rng.ts';
import { useContext } from '../helpers/gpu.ts';
import { plantedImages } from '../finetune/planted.ts';

const cli = fileURLToPath(new URL('../../src/cli/webspark.mjs', import.meta.url));
const sparkCheckpoint = fileURLToPath(new URL('../fixtures/model/resnet18s.weights.safetensors', import.meta.url));
const NAMES = ['red', 'green', 'blue', 'yellow']; // plantedImages' class order
const SIZE = 32;

async function writeFolder(dir: string, n: number, seed: number): Promise<string[]> {
  const { images, labels } = plantedImages(n, SIZE, seed);
  const per = SIZE * SIZE * 3;
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const cls = join(dir, NAMES[labels[i]!]!);
    mkdirSync(cls, { recursive: true });
    const path = join(cls, `${String(i).padStart(3, '0')}.png`);
    await sharp(Buffer.from(images.subarray(i * per, (i + 1) * per)), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(path);
    paths.push(path);
  }
  return paths;
}

function webspark(...args: string[]): string {
  return execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function fail(...args: string[]): string {
  try {
    webspark(...args);
  } catch (e) {
    return String((e as { stderr: string }).stderr);
  }
  throw new Error('expected a failure');
}

describe('webspark finetune / predict', () => {
  const getCtx = useContext();
  const root = mkdtempSync(join(tmpdir(), 'webspark-finetune-'));
  const run = join(root, 'run');
  const common = ['--data', join(root, 'train'), '--val-data', join(root, 'val'), '--input-size', '32', '--batch-size', '8', '--steps', '8', '--base-lr', '0.05', '--quiet'];
  let valPaths: string[] = [];

  beforeAll(async () => {
    await writeFolder(join(root, 'train'), 32, 1);
    valPaths = await writeFolder(join(root, 'val'), 8, 2);
    webspark('finetune', '--checkpoint', sparkCheckpoint, '--out', run, ...common);
  }, 300_000);

  it('logs one metrics line per epoch and keeps its checkpoints', () => {
    const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.map((l) => [l.epoch, l.step])).toEqual([[1, 4], [2, 8]]); // 32 images / batch 8
    for (const l of lines) {
      expect(Number.isFinite(l.trainLoss)).toBe(true);
      expect(l.valTop1).toBeGreaterThanOrEqual(0);
      expect(l.valTop5).toBe(1);
      expect(l.valImages).toBe(8);
    }
    expect(readdirSync(run).filter((f) => f.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-000000004.safetensors', 'checkpoint-000000008.safetensors']);
  });

  it('writes classifier.safetensors with timm keys, the encoder from the checkpoint, and class names', () => {
    const file = readClassifier(new Uint8Array(readFileSync(join(run, 'classifier.safetensors'))), 'classifier');
    expect(file.classNames).toEqual([...NAMES].sort()); // ImageFolder: sorted folder names
    expect(file.config).toMatchObject({ model: 'resnet18', classes: 4, inputSize: 32 });
    expect(file.arrays.get('fc.weight')!.shape).toEqual([4, 24]);
    expect(file.arrays.get('fc.bias')!.shape).toEqual([4]);
    expect(file.arrays.has('conv1.weight')).toBe(true);
    expect([...file.arrays.keys()].some((k) => k.startsWith('sparse_encoder') || k.startsWith('optimizer'))).toBe(false);
  });

  it('--resume from the epoch-1 checkpoint ends byte-identical to the uninterrupted run', () => {
    const resumed = join(root, 'resumed');
    const out = webspark('finetune', '--resume', join(run, 'checkpoint-000000004.safetensors'), '--out', resumed, ...common);
    expect(out).toMatch(/resumed from .* at step 4 of 8/);
    expect(readFileSync(join(resumed, 'classifier.safetensors')).equals(readFileSync(join(run, 'classifier.safetensors')))).toBe(true);
  });

  it('predict --json prints the top classes per image as documented, equal to the classifier in-process', async () => {
    const classifier = join(run, 'classifier.safetensors');
    const printed = JSON.parse(webspark('predict', '--checkpoint', classifier, '--json', ...valPaths.slice(0, 3))) as Prediction[];
    expect(printed.map((p) => p.image)).toEqual(valPaths.slice(0, 3));
    for (const p of printed) {
      expect(Object.keys(p).sort()).toEqual(['image', 'top5']);
      expect(p.top5.length).toBe(4); // 4 classes
      for (const t of p.top5) expect(Object.keys(t).sort()).toEqual(['class', 'name', 'prob']);
      expect(p.top5.map((t) => t.prob)).toEqual([...p.top5.map((t) => t.prob)].sort((a, b) => b - a));
      expect(p.top5.reduce((a, t) => a + t.prob, 0)).toBeCloseTo(1, 6);
    }
    // The same images (already 32 px: used as is) through the classifier in this process.
    const ctx = getCtx();
    const file = readClassifier(new Uint8Array(readFileSync(classifier)), classifier);
    const model = new Classifier(ctx, new Rng(0), file.config);
    loadStateDict(model, file.arrays);
    const images = await Promise.all(valPaths.slice(0, 3).map(async (p) => ({ name: p, rgb: new Uint8Array(await sharp(p).removeAlpha().raw().toBuffer()) })));
    const direct = await predictImages(ctx, model, file.classNames, images);
    expect(printed.map((p) => p.top5.map((t) => [t.class, t.name]))).toEqual(direct.map((p) => p.top5.map((t) => [t.class, t.name])));
    printed.forEach((p, i) => p.top5.forEach((t, k) => expect(t.prob).toBeCloseTo(direct[i]!.top5[k]!.prob, 6)));
    const text = webspark('predict', '--checkpoint', classifier, valPaths[0]!);
    expect(text).toMatch(new RegExp(`^${valPaths[0]}: (\\w+ \\d+\\.\\d %, ){3}\\w+ \\d+\\.\\d %\\n$`));
  });

  it('fine-tunes the narrow test model from random init (`--model tiny`), validating only at the end with --eval-every 0', () => {
    const out = join(root, 'tiny');
    const text = webspark('finetune', '--random-init', '--model', 'tiny', '--eval-every', '0', '--out', out, ...common);
    expect(text).toMatch(/tiny @32px/);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(lines.map((l) => l.step)).toEqual([8]);
    const file = readClassifier(new Uint8Array(readFileSync(join(out, 'classifier.safetensors'))), 'tiny');
    expect(file.config.resnet?.planes).toEqual([8, 12, 16, 24]);
    expect(file.arrays.get('fc.weight')?.shape).toEqual([4, 24]);
    expect(fail('finetune', '--random-init', '--model', 'tinyy', '--data', join(root, 'train'))).toMatch(/unknown model 'tinyy'/);
  });

  it('says what is wrong with bad input', () => {
    expect(fail('finetune', '--data', join(root, 'train'))).toMatch(/give --checkpoint FILE .* --random-init with --model, or --resume FILE/);
    expect(fail('finetune', '--data', join(root, 'train'), '--random-init', '--label-fraction', '2')).toMatch(/--label-fraction must be a number in/);
    expect(fail('finetune', '--resume', sparkCheckpoint, '--data', join(root, 'train'), '--input-size', '32')).toMatch(/not a fine-tuning checkpoint/);
    expect(fail('predict', '--checkpoint', sparkCheckpoint, valPaths[0]!)).toMatch(/not a webspark classifier/);
  });
});
