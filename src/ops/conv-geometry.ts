/**
 * The geometry of one convolution, as every conv launcher (conv2d-gemm.ts, conv-direct.ts),
 * the tuning registry (conv-tuning.ts), the auto-tune and the reference read it. A module of
 * its own so that those import it and not each other.
 */
import type { SiteLayout } from '../tensor/layout.ts';

/** A conv from an input grid to an output grid; out = floor((in + 2*pad - k) / stride) + 1. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  cin: number;
  cout: number;
  groups: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  /** Rows stored for each grid (sparse: active sites only). */
  inRows: number;
  outRows: number;
  /** Sparse layouts (both sides are sparse, or both dense). */
  inL: SiteLayout | null;
  outL: SiteLayout | null;
  /** 1x1, stride 1, pad 0 on one layout: the gathered row is the walked row. */
  pointwise: boolean;
}
