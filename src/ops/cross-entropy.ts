/**
 * Softmax cross-entropy with label smoothing (shaders/cross-entropy.wgsl), the classification
 * loss of fine-tuning. With smoothing eps the target of row i is (1 - eps) onehot(y_i) + eps/K,
 * as PyTorch's CrossEntropyLoss(label_smoothing=eps) and timm's LabelSmoothingCrossEntropy:
 *
 *   L = (1/B) sum_i [ logsumexp(z_i) - sum_c q_ic z_ic ],    dL/dz_i = (softmax(z_i) - q_i) / B
 *
 * The forward pass writes dL/dz next to the loss (one pass over each row), so backward is a
 * scale by the upstream gradient and the labels are not needed after the forward.
 */
import type { Tensor } from '../tensor/tensor.ts';
import { markGrad } from './common.ts';

/** Mean label-smoothed cross-entropy of logits [B, K] against integer labels; a [1] tensor. */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>, smoothing = 0): Tensor {
  const ctx = logits.ctx;
  if (logits.shape.length !== 2) throw new Error(`crossEntropy: logits must be [B, K], got [${logits.shape}]`);
  const [B, K] = logits.shape as [number, number];
  if (labels.length !== B) throw new Error(`crossEntropy: ${labels.length} labels for ${B} rows of logits`);
  // The kernel reads f32 logits; f16 logits (a classifier under precision f16) are not served.
  if (logits.dtype !== 'f32') throw new Error(`crossEntropy: logits must be f32, got ${logits.dtype} (fine-tune with --precision f32)`);
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`crossEntropy: label smoothing must be in [0, 1), got ${smoothing}`);
  const y = Uint32Array.from(labels);
  for (const [i, v] of y.entries()) {
    if (v !== labels[i] || v >= K) throw new Error(`crossEntropy: label ${labels[i]} of row ${i} is not a class index in [0, ${K})`);
  }
  const gpu = ctx.gpu;
  const u = { B, K, smoothing };
  const labelBuf = gpu.upload(y, 'ce-labels');
  const rows = ctx.empty([B]);
  const d = ctx.empty([B, K]);
  const loss = markGrad(ctx.empty([1]), logits);
  gpu.dispatch(gpu.pipeline('cross-entropy', 'ce_rows'), { z: logits.buffer, labels: labelBuf, rows: rows.buffer, d: d.buffer }, u, [Math.ceil(B / 64)]);
  gpu.dispatch(gpu.pipeline('cross-entropy', 'ce_mean'), { rows: rows.buffer, loss: loss.buffer }, u, [1]);
  // Safe right away: a released buffer is only overwritten by commands recorded later.
  gpu.release(labelBuf);
  if (loss.requiresGrad) {
    ctx.tape.record('crossEntropy', [logits] as const, loss, (gy) => {
      const gz = ctx.empty(logits.shape);
      gpu.dispatch(gpu.pipeline('cross-entropy', 'ce_backward'), { d: d.buffer, gy: gy.buffer, gz: gz.buffer }, u, gpu.grid(Math.ceil((B * K) / 256)));
      return [gz];
    });
  }
  return loss;
}
