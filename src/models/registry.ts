/**
 * Model names -> SparK models. Every standard ResNet and ConvNeXt; the densify norm and LAMB's
 * beta2 follow from the family as the official arg_util sets them (bn / 0.95 for ResNets,
 * ln / 0.999 for ConvNeXt).
 */
import type { Context } from '../tensor/context.ts';
import type { Rng } from '../util/rng.ts';
import { CONVNEXTS, ConvNeXt, type ConvNeXtConfig } from './convnext.ts';
import { RESNETS, ResNet, type ResNetConfig } from './resnet.ts';
import { SparK, type DensifyNorm, type Masking } from './spark.ts';

export type ResNetName = keyof typeof RESNETS;
export type ConvNeXtName = keyof typeof CONVNEXTS;
export type ModelName = ResNetName | ConvNeXtName;

export const MODEL_NAMES = [...Object.keys(RESNETS), ...Object.keys(CONVNEXTS)] as ModelName[];

export interface ModelSpec {
  family: 'resnet' | 'convnext';
  resnet?: ResNetConfig;
  convnext?: ConvNeXtConfig;
}

export function modelSpec(name: string): ModelSpec {
  if (name in RESNETS) return { family: 'resnet', resnet: RESNETS[name as ResNetName] };
  if (name in CONVNEXTS) return { family: 'convnext', convnext: CONVNEXTS[name as ConvNeXtName] };
  throw new Error(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
}

export interface SparKConfig {
  model: string;
  inputSize: number;
  decoderWidth?: number;
  maskRatio?: number;
  /** Overrides the model's default stochastic-depth rate. */
  dropPathRate?: number;
  /** Overrides the architecture (narrow test models); the name then only picks the family. */
  resnet?: ResNetConfig;
  convnext?: ConvNeXtConfig;
  /** Ablations (docs/evaluation.md): zero-out masking, single-scale decoding. */
  masking?: Masking;
  hierarchical?: boolean;
  /** ResNets: zero the last BatchNorm of each residual branch (timm's default, true). */
  zeroInitLastBn?: boolean;
}

export function densifyNormFor(family: ModelSpec['family']): DensifyNorm {
  return family === 'resnet' ? 'bn' : 'ln';
}

export function createSparK(ctx: Context, rng: Rng, config: SparKConfig): SparK {
  const spec = modelSpec(config.model);
  const dp = config.dropPathRate === undefined ? {} : { dropPathRate: config.dropPathRate };
  const zi = config.zeroInitLastBn === undefined ? {} : { zeroInitLastBn: config.zeroInitLastBn };
  const encoder =
    spec.family === 'resnet'
      ? new ResNet(ctx, rng, config.resnet ?? spec.resnet!, { ...dp, ...zi })
      : new ConvNeXt(ctx, rng, config.convnext ?? spec.convnext!, dp);
  return new SparK(ctx, rng, encoder, {
    inputSize: config.inputSize,
    densifyNorm: densifyNormFor(spec.family),
    ...(config.decoderWidth !== undefined ? { decoderWidth: config.decoderWidth } : {}),
    ...(config.maskRatio !== undefined ? { maskRatio: config.maskRatio } : {}),
    ...(config.masking !== undefined ? { masking: config.masking } : {}),
    ...(config.hierarchical !== undefined ? { hierarchical: config.hierarchical } : {}),
  });
}
