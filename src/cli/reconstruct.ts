/**
 * `webspark reconstruct`: masked reconstructions from a checkpoint, as the official
 * visualisation does (inference mode: BatchNorm on running statistics). Writes a PNG grid
 * (original | masked | reconstruction | composite per image); `--json` prints the loss.
 */
import { existsSync, readFileSync } from 'node:fs';
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { loadSquareRgb, writeGridPng } from '../platform/node/images.ts';
import { denormalizeRgb, normalizeRgb } from '../data/imagenet.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { Context } from '../tensor/context.ts';
import { PatchMask, SiteLayout } from '../tensor/layout.ts';
import { Rng } from '../util/rng.ts';
import { visiblePatches, type SparK } from '../models/spark.ts';
import { shippedModelPath } from '../platform/node/shipped-model.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', defaultText: 'the shipped demo model', help: "webspark's safetensors, safetensors with official keys, or an official `.pth`" },
  model: { type: 'string', value: 'NAME', defaultText: "the checkpoint's", help: 'the architecture, when the file does not say' },
  'input-size': { type: 'integer', min: 32, max: 4096, defaultText: "the checkpoint's, else 224", help: 'image side in pixels, a multiple of 32' },
  'decoder-width': { type: 'integer', min: 32, defaultText: "the checkpoint's", help: 'LightDecoder width, when the file does not say' },
  mask: { type: 'string', value: 'MASKS', help: '`1001,0110`: row-major 0/1 per patch (1 = visible), one per image or one for all' },
  'mask-ratio': { type: 'number', min: 0, max: 1, defaultText: "the model's", help: 'a random mask with this ratio, when `--mask` is not given' },
  seed: { type: 'integer', min: 0, default: 0, help: 'seeds the random mask' },
  out: { type: 'string', value: 'FILE', default: 'reconstruction.png', help: 'the PNG grid: original, masked, reconstruction, composite per image' },
  json: { type: 'flag', help: 'print `{"loss": ...}` (the official masked loss) and the run\'s settings as JSON' },
});

export const command: Command<typeof OPTIONS> = {
  name: 'reconstruct',
  summary: 'masked reconstructions from a checkpoint: PNG grid, --json prints the loss',
  positionals: 'IMAGE...',
  options: OPTIONS,
  run: reconstruct,
};

export function parseMasks(text: string, images: number, h: number, w: number): PatchMask {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== images && parts.length !== 1) {
    throw new Error(`--mask: ${parts.length} masks for ${images} images (give one per image, or one for all)`);
  }
  const visible = new Uint8Array(images * h * w);
  for (let b = 0; b < images; b++) {
    const s = parts[parts.length === 1 ? 0 : b]!;
    if (s.length !== h * w || /[^01]/.test(s)) {
      throw new Error(`--mask: '${s}' must be ${h * w} characters of 0/1 (a ${h}x${w} patch grid, row-major, 1 = visible)`);
    }
    for (let i = 0; i < h * w; i++) visible[b * h * w + i] = s[i] === '1' ? 1 : 0;
  }
  return new PatchMask(images, h, w, visible);
}

/** A SparK model read from a weight file, ready for inference (eval mode). */
export interface LoadedModel {
  model: SparK;
  config: SparKConfig;
  metadata: Record<string, string>;
}

/** Builds the model a weight file describes (`overrides` where the file does not say) and loads it. */
export function loadModelFile(ctx: Context, path: string, overrides: Partial<SparKConfig> = {}): LoadedModel {
  const file = readWeightFile(new Uint8Array(readFileSync(path)), path);
  const config = { ...file.config, inputSize: file.config.inputSize ?? 224 } as SparKConfig;
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v;
  if (!config.model) throw new Error(`${path} does not say which model it holds: pass --model`);
  if (config.inputSize % 32) throw new Error(`--input-size must be a multiple of 32, got ${config.inputSize}`);
  const model = createSparK(ctx, new Rng(0), config);
  loadStateDict(model, file.arrays, false);
  model.eval();
  return { model, config, metadata: file.metadata };
}

export interface Reconstruction {
  /** The official masked-patch loss, mean over the images. */
  loss: number;
  /** Per image: original | masked | reconstruction | composite, RGB bytes at the input size. */
  tiles: Uint8Array[];
}

/** Reconstructs `rgb` (RGB bytes at the model's input size) under `mask` in one batch: the loss and the grid tiles. */
export async function reconstructImages(model: SparK, rgb: Uint8Array[], mask: PatchMask): Promise<Reconstruction> {
  const ctx = model.ctx;
  const size = model.fmap * 32;
  const layout = SiteLayout.dense(rgb.length, size, size);
  const pixels = new Float32Array(layout.rows * 3);
  rgb.forEach((r, b) => pixels.set(normalizeRgb(r), b * size * size * 3));
  const reads = ctx.tidy(() => {
    const image = ctx.fromArray(pixels, [layout.rows, 3], layout);
    const vis = model.visualize(image, mask);
    return [vis.loss.read(), vis.masked.read(), vis.reconstruction.read(), vis.composite.read()];
  });
  const [loss, masked, reconstruction, composite] = await Promise.all(reads);
  const per = size * size * 3;
  const tiles: Uint8Array[] = [];
  for (let b = 0; b < rgb.length; b++) {
    const slice = (a: Float32Array) => a.subarray(b * per, (b + 1) * per);
    tiles.push(rgb[b]!, denormalizeRgb(slice(masked!)), denormalizeRgb(slice(reconstruction!)), denormalizeRgb(slice(composite!)));
  }
  return { loss: loss![0]!, tiles };
}

/** The random masks `reconstruct --mask-ratio R --seed S` draws for `images` images. */
export function seededMasks(model: SparK, images: number, seed: number, maskRatio = model.maskRatio): PatchMask {
  return model.randomMask(images, new Rng(seed), visiblePatches(model.fmap, maskRatio));
}

export async function reconstruct(args: Args<typeof OPTIONS>): Promise<number> {
  const checkpoint = args.get('checkpoint') ?? shippedModel();
  const images = args.positionals;
  if (images.length === 0) throw new Error('give one or more image files');
  const out = args.get('out');

  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const { model, config } = loadModelFile(ctx, checkpoint, {
      model: args.get('model'),
      inputSize: args.get('input-size'),
      decoderWidth: args.get('decoder-width'),
    });
    const size = config.inputSize;
    const rgb = await Promise.all(images.map((p) => loadSquareRgb(p, size)));
    const masks = args.get('mask');
    const mask = masks !== undefined ? parseMasks(masks, images.length, model.fmap, model.fmap) : seededMasks(model, images.length, args.get('seed'), args.get('mask-ratio'));
    const { loss, tiles } = await reconstructImages(model, rgb, mask);
    await writeGridPng(out, tiles, size, 4);
    const summary = { loss, images: images.length, inputSize: size, model: config.model, checkpoint, out };
    if (args.get('json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`loss ${loss.toFixed(6)} over ${images.length} image(s) with ${checkpoint}; wrote ${out}\n`);
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}

/** The shipped demo model's path, or an error saying it is missing and what to do. */
function shippedModel(): string {
  const path = shippedModelPath();
  if (!existsSync(path)) {
    throw new Error(`no --checkpoint given and the shipped demo model ${path} is missing: pass --checkpoint FILE ` +
      '(a checkpoint of `webspark pretrain`, or an official SparK .pth), or ship one with `node --import tsx tools/ship-demo-model.ts CHECKPOINT`');
  }
  return path;
}
