/**
 * The model zoo (src/models/zoo.ts): the test model 'tiny' round-trips through the config
 * fields that build it, an override in a config wins over its name's architecture, and an
 * unknown name is refused with the list of known ones. The memory estimate resolves models
 * the same way the registry builds them. No GPU needed.
 */
import { describe, expect, it } from 'vitest';
import { MODEL_NAMES, RESNETS, TINY_MODEL, TINY_RESNET, architectureOf, modelFields, modelNameOf } from '../src/models/zoo.ts';
import { estimateTrainingMemory } from '../src/train/memory-estimate.ts';

describe('model zoo', () => {
  it("names 'tiny' and every standard model, and turns each name into its config fields and back", () => {
    expect(MODEL_NAMES).toContain('resnet50');
    expect(MODEL_NAMES).toContain('convnext_atto');
    expect(MODEL_NAMES).not.toContain(TINY_MODEL);
    expect(modelFields(TINY_MODEL)).toEqual({ model: 'resnet18', resnet: TINY_RESNET });
    for (const name of [TINY_MODEL, ...MODEL_NAMES]) expect(modelNameOf(modelFields(name))).toBe(name);
  });

  it('resolves the architecture a config builds, an override first', () => {
    expect(architectureOf({ model: 'resnet50' })).toEqual({ family: 'resnet', resnet: RESNETS.resnet50 });
    expect(architectureOf(modelFields(TINY_MODEL))).toEqual({ family: 'resnet', resnet: TINY_RESNET });
    expect(architectureOf({ model: 'convnext_atto' }).family).toBe('convnext');
    expect(() => architectureOf({ model: 'vgg16' })).toThrow(/^unknown model 'vgg16' \(known: resnet18, .*convnext_large\)$/);
  });

  it('gives the memory estimate the same architecture: tiny needs far less than resnet18', () => {
    const base = { inputSize: 64, batchSize: 2, decoderWidth: 32 };
    const tiny = estimateTrainingMemory({ ...base, ...modelFields(TINY_MODEL) });
    const full = estimateTrainingMemory({ ...base, model: 'resnet18' });
    expect(tiny.parameters).toBeLessThan(full.parameters / 50);
    expect(() => estimateTrainingMemory({ ...base, model: 'vgg16' })).toThrow(/unknown model 'vgg16'/);
  });
});
