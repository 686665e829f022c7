/**
 * `webspark predict --checkpoint FILE images... [--json]`: the top-5 classes and probabilities
 * of each image under a fine-tuned classifier (`finetune --out DIR` writes DIR/classifier.safetensors).
 * Images are read as timm evaluates: shorter side to floor(size / 0.875), centre crop; an
 * image already at the input size is used as is. Class names come from the file's metadata.
 */
import { readFileSync } from 'node:fs';
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { loadSquareRgb } from '../platform/node/images.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { Context } from '../tensor/context.ts';
import { Rng } from '../util/rng.ts';
import { Classifier } from '../finetune/classifier.ts';
import { EVAL_CROP_PCT, predictImages } from '../finetune/predict.ts';
import { readClassifier } from '../finetune/weights.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', help: 'required: a fine-tuned classifier (`finetune --out DIR` writes DIR/classifier.safetensors)' },
  json: { type: 'flag', help: 'print one JSON array: `[{"image", "top5": [{"class", "name", "prob"}]}]`' },
});

export const command: Command<typeof OPTIONS> = {
  name: 'predict',
  summary: 'top-5 classes of images under a fine-tuned classifier: `--checkpoint classifier.safetensors IMAGE... [--json]`',
  positionals: 'IMAGE...',
  options: OPTIONS,
  run: predictCommand,
};

export async function predictCommand(args: Args<typeof OPTIONS>): Promise<number> {
  const checkpoint = args.get('checkpoint');
  const json = args.get('json');
  const paths = args.positionals;
  if (!checkpoint || paths.length === 0) throw new Error('usage: webspark predict --checkpoint classifier.safetensors IMAGE... [--json]');
  const file = readClassifier(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const size = file.config.inputSize;
  const images = await Promise.all(paths.map(async (p) => ({ name: p, rgb: await loadSquareRgb(p, size, EVAL_CROP_PCT) })));
  const gpu = await createNodeGpu();
  const ctx = new Context(gpu);
  try {
    const model = new Classifier(ctx, new Rng(0), file.config);
    loadStateDict(model, file.arrays);
    const results = await predictImages(ctx, model, file.classNames, images);
    if (json) {
      process.stdout.write(`${JSON.stringify(results)}\n`);
    } else {
      for (const r of results) {
        const line = r.top5.map((t) => `${t.name} ${(t.prob * 100).toFixed(1)} %`).join(', ');
        process.stdout.write(`${r.image}: ${line}\n`);
      }
    }
    return 0;
  } finally {
    ctx.dispose();
    gpu.destroy();
  }
}
