/**
 * `webspark reconstruct`: masked reconstructions from a checkpoint, as the official
 * visualisation does (inference mode: BatchNorm on running statistics). Writes a PNG grid
 * (original | masked | reconstruction | composite per image); `--json` prints the loss.
 */
import { readFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { loadSquareRgb, writeGridPng } from '../platform/node/images.ts';
import { denormalizeRgb, normalizeRgb } from '../data/imagenet.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { createSparK, type SparKConfig } from '../models/registry.ts';
import { Context } from '../tensor/context.ts';
import { PatchMask, SiteLayout } from '../tensor/layout.ts';
import { Rng } from '../util/rng.ts';
import { visiblePatches } from '../models/spark.ts';

const OPTIONS = ['checkpoint', 'model', 'input-size', 'decoder-width', 'mask', 'mask-ratio', 'seed', 'out', 'json'];

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

export async function reconstruct(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const checkpoint = args.string('checkpoint');
  if (!checkpoint) throw new Error('--checkpoint FILE is required (a .safetensors or official .pth)');
  const images = args.positionals;
  if (images.length === 0) throw new Error('give one or more image files');
  const out = args.string('out', 'reconstruction.png');

  const file = readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const config: SparKConfig = {
    ...file.config,
    model: args.string('model') ?? file.config.model ?? '',
    inputSize: args.number('input-size', file.config.inputSize ?? 224, { min: 32, max: 4096, integer: true }),
  } as SparKConfig;
  if (!config.model) throw new Error(`${checkpoint} does not say which model it holds: pass --model`);
  if (args.has('decoder-width')) config.decoderWidth = args.number('decoder-width', 768, { min: 32, integer: true });
  if (config.inputSize % 32) throw new Error(`--input-size must be a multiple of 32, got ${config.inputSize}`);

  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const model = createSparK(ctx, new Rng(0), config);
    loadStateDict(model, file.arrays, false);
    model.eval();
    const size = config.inputSize;
    const rgb = await Promise.all(images.map((p) => loadSquareRgb(p, size)));
    const mask = args.has('mask')
      ? parseMasks(args.string('mask')!, images.length, model.fmap, model.fmap)
      : model.randomMask(
          images.length,
          new Rng(args.number('seed', 0, { integer: true, min: 0 })),
          visiblePatches(model.fmap, args.number('mask-ratio', model.maskRatio, { min: 0, max: 1 })),
        );
    const layout = SiteLayout.dense(images.length, size, size);
    const pixels = new Float32Array(layout.rows * 3);
    rgb.forEach((r, b) => pixels.set(normalizeRgb(r), b * size * size * 3));
    const image = ctx.fromArray(pixels, [layout.rows, 3], layout);
    const result = ctx.noGrad(() => {
      const { loss, rec } = model.forward(image, mask);
      return { loss, rec };
    });
    const vis = model.visualize(image, mask);
    const [loss, masked, reconstruction, composite] = await Promise.all([
      result.loss.read(),
      vis.masked.read(),
      vis.reconstruction.read(),
      vis.composite.read(),
    ]);
    const per = size * size * 3;
    const tiles: Uint8Array[] = [];
    for (let b = 0; b < images.length; b++) {
      const slice = (a: Float32Array) => a.subarray(b * per, (b + 1) * per);
      tiles.push(rgb[b]!, denormalizeRgb(slice(masked)), denormalizeRgb(slice(reconstruction)), denormalizeRgb(slice(composite)));
    }
    await writeGridPng(out, tiles, size, 4);
    const summary = { loss: loss[0], images: images.length, inputSize: size, model: config.model, out };
    if (args.has('json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`loss ${loss[0]!.toFixed(6)} over ${images.length} image(s); wrote ${out}\n`);
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
