/**
 * One evaluation: features of the train and val images from a frozen encoder, then k-NN or a
 * linear probe. Platform-neutral (the CLI, the experiment script and the app's worker call it).
 */
import type { Encoder } from '../models/spark.ts';
import type { Context } from '../tensor/context.ts';
import { extractFeatures, type FeatureSet } from './features.ts';
import { knnClassify, type KnnOptions } from './knn.ts';
import { linearProbe, type LinearProbeOptions } from './linear-probe.ts';

export type Protocol = 'knn' | 'linear';

export interface ImageSet {
  images: Uint8Array;
  labels: Int32Array;
}

export interface EvaluateOptions {
  protocol: Protocol;
  size: number;
  knn?: KnnOptions;
  linear?: LinearProbeOptions;
  featureBatch?: number;
  onProgress?: (phase: 'features-train' | 'features-val' | 'probe', done: number, total: number) => void;
}

export interface EvaluateResult {
  protocol: Protocol;
  accuracy: number;
  correct: number;
  total: number;
  trainImages: number;
  featureDim: number;
  /** Linear probe only. */
  trainAccuracy?: number;
  losses?: number[];
  seconds: { features: number; probe: number };
}

export async function featuresOf(ctx: Context, encoder: Encoder, set: ImageSet, size: number, batch: number | undefined, onProgress?: (d: number, t: number) => void): Promise<FeatureSet> {
  return extractFeatures(ctx, encoder, set.images, set.labels, size, { ...(batch ? { batchSize: batch } : {}), ...(onProgress ? { onProgress } : {}) });
}

export async function evaluateEncoder(ctx: Context, encoder: Encoder, train: ImageSet, val: ImageSet, options: EvaluateOptions): Promise<EvaluateResult> {
  const t0 = performance.now();
  const p = options.onProgress;
  const ft = await featuresOf(ctx, encoder, train, options.size, options.featureBatch, p && ((d, t) => p('features-train', d, t)));
  const fv = await featuresOf(ctx, encoder, val, options.size, options.featureBatch, p && ((d, t) => p('features-val', d, t)));
  return evaluateFeatures(ctx, ft, fv, options, (performance.now() - t0) / 1000);
}

/**
 * The protocol alone, on features already extracted (so several protocols can share one
 * extraction); `featureSeconds` is reported as the features' time.
 */
export async function evaluateFeatures(
  ctx: Context,
  ft: FeatureSet,
  fv: FeatureSet,
  options: Omit<EvaluateOptions, 'size' | 'featureBatch'>,
  featureSeconds = 0,
): Promise<EvaluateResult> {
  const t1 = performance.now();
  const p = options.onProgress;
  const base = { protocol: options.protocol, trainImages: ft.n, featureDim: ft.dim };
  if (options.protocol === 'knn') {
    const r = await knnClassify(ctx, ft, fv, options.knn);
    return { ...base, accuracy: r.accuracy, correct: r.correct, total: r.total, seconds: { features: featureSeconds, probe: (performance.now() - t1) / 1000 } };
  }
  const epochs = options.linear?.epochs ?? 30;
  const r = await linearProbe(ctx, ft, fv, {
    ...options.linear,
    onEpoch: (e, loss) => {
      options.linear?.onEpoch?.(e, loss);
      p?.('probe', e + 1, epochs);
    },
  });
  return {
    ...base,
    accuracy: r.accuracy,
    correct: r.correct,
    total: r.total,
    trainAccuracy: r.trainAccuracy,
    losses: r.losses,
    seconds: { features: featureSeconds, probe: (performance.now() - t1) / 1000 },
  };
}
