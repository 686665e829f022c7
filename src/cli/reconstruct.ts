/**
 * `webspark reconstruct`: masked reconstructions from a checkpoint, as the official
 * visualisation does (inference mode: BatchNorm on running statistics). Writes a PNG grid
 * (original | masked | reconstruction | composite per image); `--json` prints the loss.
 */
import { readFileSync } from 'node:fs';
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
import { visiblePatches } from '../models/spark.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', help: "required: webspark's safetensors, safetensors with official keys, or an official `.pth`" },
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

export async function reconstruct(args: Args<typeof OPTIONS>): Promise<number> {
  const checkpoint = args.get('checkpoint');
  if (!checkpoint) throw new Error('--checkpoint FILE is required (a .safetensors or official .pth)');
  const images = args.positionals;
  if (images.length === 0) throw new Error('give one or more image files');
  const out = args.get('out');

  const file = readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const config: SparKConfig = {
    ...file.config,
    model: args.get('model') ?? file.config.model ?? '',
    inputSize: args.get('input-size', file.config.inputSize ?? 224),
  } as SparKConfig;
  if (!config.model) throw new Error(`${checkpoint} does not say which model it holds: pass --model`);
  const decoderWidth = args.get('decoder-width');
  if (decoderWidth !== undefined) config.decoderWidth = decoderWidth;
  if (config.inputSize % 32) throw new Error(`--input-size must be a multiple of 32, got ${config.inputSize}`);

  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const model = createSparK(ctx, new Rng(0), config);
    loadStateDict(model, file.arrays, false);
    model.eval();
    const size = config.inputSize;
    const rgb = await Promise.all(images.map((p) => loadSquareRgb(p, size)));
    const masks = args.get('mask');
    const mask = masks !== undefined
      ? parseMasks(masks, images.length, model.fmap, model.fmap)
      : model.randomMask(images.length, new Rng(args.get('seed')), visiblePatches(model.fmap, args.get('mask-ratio', model.maskRatio)));
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
    if (args.get('json')) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`loss ${loss[0]!.toFixed(6)} over ${images.length} image(s); wrote ${out}\n`);
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
