/**
 * `webspark export-encoder --checkpoint FILE --out FILE`: the pre-trained encoder alone, as
 * safetensors with the key names of the official `*_1kpretrained_timm_style.pth` (what a
 * downstream fine-tuning script loads into timm / torchvision). Reads webspark checkpoints,
 * official `.pth` checkpoints and safetensors with official keys.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { defineOptions, type Args } from './args.ts';
import type { Command } from './command.ts';
import { readWeightFile } from '../io/checkpoint-file.ts';
import { encoderTensors, exportEncoder } from '../io/export.ts';

const OPTIONS = defineOptions({
  checkpoint: { type: 'string', value: 'FILE', help: 'required: a webspark checkpoint, an official `.pth`, or safetensors with official keys' },
  out: { type: 'string', value: 'FILE', help: 'required: the encoder as safetensors with timm-style keys' },
  model: { type: 'string', value: 'NAME', defaultText: "the checkpoint's", help: 'the architecture, when the file does not say' },
});

export const command: Command<typeof OPTIONS> = {
  name: 'export-encoder',
  summary: 'the encoder alone as safetensors with timm-style keys: `--checkpoint FILE --out FILE`',
  options: OPTIONS,
  run: exportEncoderCommand,
};

export async function exportEncoderCommand(args: Args<typeof OPTIONS>): Promise<number> {
  const checkpoint = args.get('checkpoint');
  const out = args.get('out');
  if (!checkpoint || !out) throw new Error('usage: webspark export-encoder --checkpoint FILE --out FILE.safetensors [--model NAME]');
  const file = readWeightFile(new Uint8Array(readFileSync(checkpoint)), checkpoint);
  const arch = args.get('model') ?? file.config.model;
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
