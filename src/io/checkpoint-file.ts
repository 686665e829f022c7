/**
 * Reads a SparK weight file — webspark's safetensors, a safetensors with official keys, or the
 * official `*_withdecoder_1kpretrained_spark_style.pth` — into named float32 arrays plus what the
 * file says about the model (architecture, input size, decoder width).
 */
import { readSafetensors, toFloat32 } from './safetensors.ts';
import { pthStateDict, pthToFloat32, readPth } from './pth.ts';
import type { NamedArray } from './state-dict.ts';
import type { SparKConfig } from '../models/registry.ts';

export interface WeightFile {
  arrays: Map<string, NamedArray>;
  /** The model description found in the file, if any. */
  config: Partial<SparKConfig>;
  metadata: Record<string, string>;
}

/** The metadata key webspark writes its model description under (JSON of SparKConfig). */
export const CONFIG_KEY = 'webspark.config';

export function readWeightFile(bytes: Uint8Array, name: string): WeightFile {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) return fromPth(bytes);
  if (name.endsWith('.pth') || name.endsWith('.pt')) {
    throw new Error(`${name}: not a PyTorch zip checkpoint (legacy non-zip .pth files are not supported)`);
  }
  const st = readSafetensors(bytes);
  const arrays = new Map<string, NamedArray>();
  for (const [key, e] of st.tensors) arrays.set(key, { shape: e.shape, data: toFloat32(e) });
  return { arrays, config: configFromMetadata(st.metadata), metadata: st.metadata };
}

function fromPth(bytes: Uint8Array): WeightFile {
  const obj = readPth(bytes) as Record<string, unknown>;
  const arrays = new Map<string, NamedArray>();
  for (const [key, t] of pthStateDict(obj)) {
    // pthToFloat32 converts every dtype (int64 num_batches_tracked included, which
    // Float32Array.from cannot take: its values are BigInts).
    arrays.set(key, { shape: t.shape, data: pthToFloat32(t) });
  }
  const config: Partial<SparKConfig> = {};
  if (typeof obj.arch === 'string') config.model = obj.arch;
  if (typeof obj.input_size === 'number') config.inputSize = obj.input_size;
  const width = arrays.get('dense_decoder.dec.0.up_sample.weight')?.shape[0];
  if (width) config.decoderWidth = width;
  return { arrays, config, metadata: {} };
}

/** Our own metadata, or the fixture script's `spark_config`. */
export function configFromMetadata(meta: Record<string, string>): Partial<SparKConfig> {
  if (meta[CONFIG_KEY]) return JSON.parse(meta[CONFIG_KEY]) as Partial<SparKConfig>;
  if (meta.spark_config) {
    const c = JSON.parse(meta.spark_config) as Record<string, unknown>;
    const out: Partial<SparKConfig> = { decoderWidth: c.decoder_width as number, maskRatio: c.mask_ratio as number };
    if (typeof c.drop_path_rate === 'number') out.dropPathRate = c.drop_path_rate;
    if (c.arch === 'resnet') {
      out.model = c.block === 'basic' ? 'resnet18' : 'resnet50';
      out.resnet = {
        block: c.block as 'basic' | 'bottleneck',
        layers: c.layers as [number, number, number, number],
        stemWidth: c.stem_width as number,
        planes: c.planes as [number, number, number, number],
      };
    } else {
      out.model = 'convnext_tiny';
      out.convnext = { depths: c.depths as [number, number, number, number], dims: c.dims as [number, number, number, number] };
    }
    return out;
  }
  return {};
}
