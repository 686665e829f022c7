/**
 * The demo model that ships with webspark: where it lies (one path, relative to public/ for the
 * page and the command line alike) and what its file says about itself (the "model card",
 * JSON under the safetensors metadata key `webspark.card`, next to `webspark.config`).
 * Data only, no model code: the page's main thread reads it.
 */

/** The shipped weights, relative to public/ (the page fetches it next to index.html). */
export const DEMO_MODEL_PATH = 'models/demo-model.safetensors';

/** The held-out photos the demo offers, relative to public/: `<key>.jpg` and this list. */
export const DEMO_PHOTOS_DIR = 'demo/heldout';
export const DEMO_PHOTOS_LIST = 'demo/heldout/photos.json';

/** The metadata key of the card. */
export const CARD_KEY = 'webspark.card';

/** The held-out loss figure: the official masked-patch loss, inference mode. */
export interface HeldOutLoss {
  /** Mean over every photo and mask. */
  mean: number;
  photos: number;
  /** Seeds of the random masks: seeds.length masks per photo. */
  seeds: number[];
  maskRatio: number;
  inputSize: number;
  /** The loss per seed (each a mean over the photos). */
  perSeed: number[];
}

export interface DemoModelCard {
  /** One line for the page: "SparK ResNet-18, 128 px, CPU stop-gap". */
  title: string;
  model: string;
  inputSize: number;
  decoderWidth: number;
  steps: number;
  batchSize: number;
  /** What it was trained on, e.g. "288 photos of the webspark photo corpus (train split)". */
  data: string;
  /** Where it was trained: adapter and machine. */
  hardware: string;
  /** Training wall time in seconds, when the run directory recorded it. */
  wallSeconds: number | null;
  /** How the wall time was measured (the run's `started`/`ended` files, or the sum of step times). */
  wallSource: string;
  heldOut: HeldOutLoss;
  /** The checkpoint it was made from (file name only). */
  checkpoint: string;
  /** How the weights are stored: "F16 (1-D tensors F32)". */
  storage: string;
}

/** A held-out photo the demo offers, with its credits (from the corpus). */
export interface DemoPhoto {
  key: string;
  file: string;
  package: string;
  licence: string;
  author: string;
}

/** The card from a weight file's metadata; null when it has none; throws when it is malformed. */
export function cardFromMetadata(meta: Record<string, string>): DemoModelCard | null {
  const raw = meta[CARD_KEY];
  if (raw === undefined) return null;
  const card = JSON.parse(raw) as DemoModelCard;
  if (typeof card.title !== 'string' || typeof card.heldOut?.mean !== 'number') {
    throw new Error(`${CARD_KEY} metadata lacks a title or a held-out loss: not a webspark demo model card`);
  }
  return card;
}

/** How the held-out figure was measured, in words. */
export function heldOutProtocol(h: HeldOutLoss): string {
  return `official masked-patch loss, mask ratio ${h.maskRatio}, ${h.seeds.length} seeded masks per photo, ${h.photos} held-out photos at ${h.inputSize} px`;
}

/** The held-out figure as the doc, the page and `webspark info` print it (3 decimals). */
export function formatHeldOut(h: HeldOutLoss): string {
  return `${h.mean.toFixed(3)} (${heldOutProtocol(h)})`;
}
