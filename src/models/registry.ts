/**
 * Model configurations -> SparK models (the names and architectures: zoo.ts). The densify
 * norm and LAMB's beta2 follow from the family as the official arg_util sets them (bn / 0.95
 * for ResNets, ln / 0.999 for ConvNeXt).
 */
import type { Context } from '../tensor/context.ts';
import type { Rng } from '../util/rng.ts';
import { ConvNeXt } from './convnext.ts';
import { ResNet } from './resnet.ts';
import { SparK, type DensifyNorm, type Masking } from './spark.ts';
import { architectureOf, type ConvNeXtConfig, type ModelSpec, type ResNetConfig } from './zoo.ts';

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
  const arch = architectureOf(config);
  const dp = config.dropPathRate === undefined ? {} : { dropPathRate: config.dropPathRate };
  const zi = config.zeroInitLastBn === undefined ? {} : { zeroInitLastBn: config.zeroInitLastBn };
  const encoder =
    arch.family === 'resnet' ? new ResNet(ctx, rng, arch.resnet, { ...dp, ...zi }) : new ConvNeXt(ctx, rng, arch.convnext, dp);
  return new SparK(ctx, rng, encoder, {
    inputSize: config.inputSize,
    densifyNorm: densifyNormFor(arch.family),
    ...(config.decoderWidth !== undefined ? { decoderWidth: config.decoderWidth } : {}),
    ...(config.maskRatio !== undefined ? { maskRatio: config.maskRatio } : {}),
    ...(config.masking !== undefined ? { masking: config.masking } : {}),
    ...(config.hierarchical !== undefined ? { hierarchical: config.hierarchical } : {}),
  });
}
