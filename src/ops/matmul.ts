/**
 * linear: the conv GEMM core (shaders/conv2d.wgsl) as a 1x1 "pointwise" conv over the rows of
 * x, where the gather is the identity. PyTorch's nn.Linear weight [Cout, Cin] is OIHW with a
 * 1x1 kernel, so no weight packing is needed.
 *   forward  y = x @ w^T + b          (GEMM over rows, K = Cin)
 *   dx       = dy @ w                 (the conv's input-gradient pass, K = Cout)
 *   dw       = dy^T @ x               (split-K over rows, then a reduction pass)
 *   db       = column sums of dy      (split the same way)
 */
import type { Tensor } from '../tensor/tensor.ts';
import { markGrad } from './common.ts';
import { columnSums } from './chunks.ts';
import { forward, inputGrad, weightGrad } from './conv-launch.ts';
import type { ConvConfig, ConvGeometry } from './conv-plan.ts';

/** linear runs the default kernels, untuned: its shapes are not conv keys of the auto-tune. */
const LINEAR: ConvConfig = {};

/** y[N, Cout] = x[N, Cin] @ w[Cout, Cin]^T + bias (PyTorch nn.Linear layout). Keeps x.layout. */
export function linear(x: Tensor, w: Tensor, bias: Tensor | null): Tensor {
  const ctx = x.ctx;
  const cin = x.channels;
  const cout = w.shape[0]!;
  if (w.shape.length !== 2 || w.shape[1] !== cin) {
    throw new Error(`linear: weight [${w.shape}] must be [Cout, Cin=${cin}]`);
  }
  if (bias && bias.size !== cout) throw new Error(`linear: bias has ${bias.size} values for ${cout} outputs`);
  const rows = x.size / cin;
  const g: ConvGeometry = {
    batch: 1, inH: 1, inW: rows, outH: 1, outW: rows, cin, cout, groups: 1, kh: 1, kw: 1, stride: 1, pad: 0,
    inRows: rows, outRows: rows, inL: null, outL: null, pointwise: true,
  };
  // The output is stored as the input is (the activation dtype, precision.ts).
  const act = x.dtype;
  const y = markGrad(ctx.empty([...x.shape.slice(0, -1), cout], x.layout, act), x, w, bias);
  forward(ctx, g, act, x.buffer, w, bias?.buffer ?? null, y.buffer, LINEAR);

  if (y.requiresGrad) {
    ctx.tape.record('linear', [x, w, bias] as const, y, (gy) => {
      let dx: Tensor | null = null;
      if (x.requiresGrad) {
        dx = ctx.empty(x.shape, x.layout, act);
        inputGrad(ctx, g, act, gy.buffer, w, null, dx.buffer, LINEAR);
      }
      const dw = w.requiresGrad ? weightGrad(ctx, g, act, x.buffer, gy.buffer, LINEAR, w.shape) : null;
      const db = bias?.requiresGrad ? columnSums(ctx, gy.buffer, rows, cout, act) : null;
      return [dx, dw, db];
    });
  }
  return y;
}
