/**
 * Interop with the official SparK code and timm:
 *
 * - `exportEncoder`: the encoder alone, as the official `*_1kpretrained_timm_style.pth` holds
 *   it: the SparK keys without `sparse_encoder.sp_cnn.` (timm ResNet keys, which have no `fc`
 *   here; the official ConvNeXt keys, no `norm`/`head`), float32, `num_batches_tracked` as
 *   int64, in the model's order. `timm.create_model(arch)` / torchvision load it with
 *   `load_state_dict(sd, strict=False)` (only the classifier is missing).
 * - `officialModelArrays`: the model part of an official SparK checkpoint, without the three
 *   buffers the official model keeps for old checkpoints (`imn_m`, `imn_s`, `norm_black`; they
 *   are not used by the loss), so the rest can be loaded strictly.
 */
import { writeSafetensorsParts, type TensorInput } from './safetensors.ts';
import type { NamedArray } from './state-dict.ts';

export const ENCODER_PREFIX = 'sparse_encoder.sp_cnn.';
export const DEPRECATED_BUFFERS = ['imn_m', 'imn_s', 'norm_black'] as const;
/** Keys of webspark's own checkpoint that are not model weights (see src/train/checkpoint.ts). */
const NON_MODEL_PREFIX = 'optimizer.';

/** The encoder's tensors under timm-style names, in the file's (= the model's) order. */
export function encoderTensors(arrays: ReadonlyMap<string, NamedArray>): TensorInput[] {
  const out: TensorInput[] = [];
  for (const [key, v] of arrays) {
    if (!key.startsWith(ENCODER_PREFIX)) continue;
    const name = key.slice(ENCODER_PREFIX.length);
    out.push(
      name.endsWith('num_batches_tracked')
        ? { name, dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(Math.round(v.data[0] ?? 0))) }
        : { name, dtype: 'F32', shape: [...v.shape], data: v.data },
    );
  }
  if (out.length === 0) {
    throw new Error(`no '${ENCODER_PREFIX}*' keys: this is not a SparK checkpoint (an encoder export is already timm-style)`);
  }
  return out;
}

/** A safetensors file (as parts, header first) holding the encoder alone; metadata names the arch. */
export function exportEncoder(arrays: ReadonlyMap<string, NamedArray>, arch: string): Uint8Array[] {
  return writeSafetensorsParts(encoderTensors(arrays), {
    format: 'pt',
    arch,
    'webspark.export': 'encoder, timm-style keys (official *_1kpretrained_timm_style.pth layout)',
  });
}

/** The model weights of a checkpoint: no optimizer state, no deprecated buffers. */
export function officialModelArrays(arrays: ReadonlyMap<string, NamedArray>): Map<string, NamedArray> {
  const drop = new Set<string>(DEPRECATED_BUFFERS);
  const out = new Map<string, NamedArray>();
  for (const [k, v] of arrays) if (!drop.has(k) && !k.startsWith(NON_MODEL_PREFIX)) out.set(k, v);
  return out;
}
