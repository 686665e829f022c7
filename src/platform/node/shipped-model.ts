/**
 * Where the command line finds the shipped demo model and its held-out photos: public/ of this
 * checkout (the same files the page serves). WEBSPARK_DEMO_MODEL names another model file
 * (tests use it to see both a present and a missing model).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../io/safetensors.ts';
import { cardFromMetadata, DEMO_MODEL_PATH, formatHeldOut, type DemoModelCard } from '../../models/demo-model.ts';

/** public/ of this checkout. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../../public/', import.meta.url));

export function shippedModelPath(): string {
  return process.env.WEBSPARK_DEMO_MODEL || `${PUBLIC_DIR}${DEMO_MODEL_PATH}`;
}

export interface ShippedModel {
  path: string;
  /** null: no file there. */
  bytes: number | null;
  card: DemoModelCard | null;
}

/** What the shipped model file says about itself (reads the header only), or that it is missing. */
export function shippedModel(path = shippedModelPath()): ShippedModel {
  if (!existsSync(path)) return { path, bytes: null, card: null };
  const bytes = readFileSync(path);
  return { path, bytes: bytes.length, card: cardFromMetadata(readSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)).metadata) };
}

/** Lines for `webspark info`: the file, the model, its data and its held-out loss, or that it is missing and what to do. */
export function describeShippedModel(m: ShippedModel): string[] {
  if (m.bytes === null) {
    return [`demo model: missing (${m.path}): \`reconstruct\` then needs --checkpoint FILE;`,
      '           ship one with `node --import tsx tools/ship-demo-model.ts CHECKPOINT`'];
  }
  const size = `${(m.bytes / 1e6).toFixed(1)} MB`;
  if (!m.card) return [`demo model: ${m.path} (${size}), without a model card (not made by tools/ship-demo-model.ts)`];
  const c = m.card;
  return [
    `demo model: ${m.path} (${size}, ${c.storage})`,
    `           ${c.title}: ${c.model}, ${c.inputSize} px, decoder width ${c.decoderWidth}, ${c.steps} steps at batch ${c.batchSize}`,
    `           trained on ${c.data}`,
    `           on ${c.hardware}`,
    `           held-out loss ${formatHeldOut(c.heldOut)}`,
  ];
}
