/**
 * `webspark export-encoder --checkpoint FILE --out FILE`: the pre-trained encoder alone, as
 * safetensors with the key names of the official `*_1kpretrained_timm_style.pth` (what a
 * downstream fine-tuning script loads into timm / torchvision). Reads webspark checkpoints,
 * official `.pth` checkpoints and safetensors with official keys.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Args } from './args.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { encoderTensors, exportEncoder } from '../io/export.ts';

const OPTIONS = ['checkpoint', 'out', 'model'];

export async function exportEncoderCommand(args: Args): Promise<number> {
  const unknown = args.unknown(OPTIONS);
  if (unknown.length) throw new Error(`unknown option --${unknown[0]} (known: ${OPTIONS.map((o) => `--${o}`).join(' ')})`);
  const checkpoint = args.string('checkpoint');
  const out = args.string('out');
  if (!checkpoint || !out) throw new Error('usage: webspark export-encoder --checkpoint FILE --out FILE.safetensors [--model NAME]');
  const file = readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const arch = args.string('model') ?? file.config.model;
  if (!arch) throw new Error(`${checkpoint} does not say which model it holds: pass --model`);
  const parts = exportEncoder(file.arrays, arch);
  // Written under a temporary name and renamed, so a killed export never leaves half a file.
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, Buffer.concat(parts));
  renameSync(tmp, out);
  const n = encoderTensors(file.arrays).length;
  process.stdout.write(`${out}: ${arch} encoder, ${n} tensors with timm-style keys (load with strict=False: no classifier)\n`);
  return 0;
}
