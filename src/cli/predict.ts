/**
 * `webspark predict --checkpoint FILE images... [--json]`: the top-5 classes and probabilities
 * of each image under a fine-tuned classifier (`finetune --out DIR` writes DIR/classifier.safetensors).
 * Images are read as timm evaluates: shorter side to floor(size / 0.875), centre crop; an
 * image already at the input size is used as is. Class names come from the file's metadata.
 */
import { readFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { createNodeGpu } from '../platform/node/gpu.ts';
import { loadSquareRgb } from '../platform/node/images.ts';
import { loadStateDict } from '../io/state-dict.ts';
import { Context } from '../tensor/context.ts';
import { Rng } from '../util/rng.ts';
import { Classifier } from '../finetune/classifier.ts';
import { predictImages } from '../finetune/predict.ts';
import { readClassifier } from '../finetune/weights.ts';

const OPTIONS = ['checkpoint', 'json'];
/** timm's default evaluation crop. */
const CROP_PCT = 0.875;

function flagValue(args: Args, name: string): string | undefined {
  try {
    return args.string(name);
  } catch {
    return undefined; // given without a value
  }
}

export async function predictCommand(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const checkpoint = args.string('checkpoint');
  // `--json` is a switch: the parser reads a path right after it as its value, which is an image.
  const json = args.has('json');
  const afterJson = json ? flagValue(args, 'json') : undefined;
  const paths = [...(afterJson ? [afterJson] : []), ...args.positionals];
  if (!checkpoint || paths.length === 0) throw new Error('usage: webspark predict --checkpoint classifier.safetensors IMAGE... [--json]');
  const file = readClassifier(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const size = file.config.inputSize;
  const images = await Promise.all(paths.map(async (p) => ({ name: p, rgb: await loadSquareRgb(p, size, CROP_PCT) })));
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
