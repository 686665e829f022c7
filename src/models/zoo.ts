/**
 * The model zoo: every model name a user can give (each standard ResNet and ConvNeXt, and the
 * test model 'tiny') and the architecture it stands for. Data only, no model code, so the
 * page's main thread can name models without loading them; src/models/registry.ts builds them.
 */

export interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  layers: readonly [number, number, number, number];
  /** Channels of the stem (64 in every standard ResNet). */
  stemWidth?: number;
  /** Inner width of each stage (64, 128, 256, 512 in every standard ResNet); narrow test models differ. */
  planes?: readonly [number, number, number, number];
  dropPathRate?: number;
}

/** timm's ResNets; default drop-path rates are SparK's (`pretrain_default_model_kwargs`). */
export const RESNETS = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2], dropPathRate: 0 },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3], dropPathRate: 0 },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3], dropPathRate: 0.05 },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3], dropPathRate: 0.08 },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3], dropPathRate: 0.1 },
  resnet200: { block: 'bottleneck', layers: [3, 24, 36, 3], dropPathRate: 0.15 },
} as const satisfies Record<string, ResNetConfig>;

export interface ConvNeXtConfig {
  depths: readonly [number, number, number, number];
  dims: readonly [number, number, number, number];
  dropPathRate?: number;
  layerScaleInit?: number;
}

/** Official sizes (atto..nano from ConvNeXt V2 / timm); drop-path defaults are SparK's where it sets them. */
export const CONVNEXTS = {
  convnext_atto: { depths: [2, 2, 6, 2], dims: [40, 80, 160, 320], dropPathRate: 0 },
  convnext_femto: { depths: [2, 2, 6, 2], dims: [48, 96, 192, 384], dropPathRate: 0 },
  convnext_pico: { depths: [2, 2, 6, 2], dims: [64, 128, 256, 512], dropPathRate: 0 },
  convnext_nano: { depths: [2, 2, 8, 2], dims: [80, 160, 320, 640], dropPathRate: 0 },
  convnext_tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768], dropPathRate: 0.1 },
  convnext_small: { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768], dropPathRate: 0.2 },
  convnext_base: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024], dropPathRate: 0.3 },
  convnext_large: { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536], dropPathRate: 0.4 },
} as const satisfies Record<string, ConvNeXtConfig>;

export type ResNetName = keyof typeof RESNETS;
export type ConvNeXtName = keyof typeof CONVNEXTS;
export type ModelName = ResNetName | ConvNeXtName;

/** The names of the standard architectures (what checkpoints and the CLI name). */
export const MODEL_NAMES = [...Object.keys(RESNETS), ...Object.keys(CONVNEXTS)] as ModelName[];

/**
 * The test model: ResNet-18's shape a few channels wide, for tests and a first look on
 * software adapters. A config holds it as `model: 'resnet18'` with `resnet` overridden.
 */
export const TINY_MODEL = 'tiny';
export const TINY_RESNET: ResNetConfig = { block: 'basic', layers: [1, 1, 1, 1], stemWidth: 8, planes: [8, 12, 16, 24] };

/** A model name, the test model's included, as the config fields that build it. */
export function modelFields(name: string): { model: string; resnet?: ResNetConfig } {
  return name === TINY_MODEL ? { model: 'resnet18', resnet: TINY_RESNET } : { model: name };
}

/** The name a config's model goes by (modelFields' inverse): the test model for a narrowed ResNet. */
export function modelNameOf(config: { model: string; resnet?: ResNetConfig }): string {
  return config.resnet ? TINY_MODEL : config.model;
}

export interface ModelSpec {
  family: 'resnet' | 'convnext';
  resnet?: ResNetConfig;
  convnext?: ConvNeXtConfig;
}

/** The family and architecture of a standard model name; an error listing the names otherwise. */
export function modelSpec(name: string): ModelSpec {
  if (name in RESNETS) return { family: 'resnet', resnet: RESNETS[name as ResNetName] };
  if (name in CONVNEXTS) return { family: 'convnext', convnext: CONVNEXTS[name as ConvNeXtName] };
  throw new Error(`unknown model '${name}' (known: ${MODEL_NAMES.join(', ')})`);
}

/**
 * The architecture a config builds: the family of its model name, with the config's own
 * `resnet` / `convnext` (a narrow test model) in place of the name's where given.
 */
export function architectureOf(config: { model: string; resnet?: ResNetConfig; convnext?: ConvNeXtConfig }):
  { family: 'resnet'; resnet: ResNetConfig } | { family: 'convnext'; convnext: ConvNeXtConfig } {
  const spec = modelSpec(config.model);
  return spec.family === 'resnet'
    ? { family: 'resnet', resnet: config.resnet ?? spec.resnet! }
    : { family: 'convnext', convnext: config.convnext ?? spec.convnext! };
}
