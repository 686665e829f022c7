/**
 * windowOutput (src/ops/common.ts), the one output-grid rule of conv2d, depthwiseConv2d and
 * maxPool2d: the output size, the default layout (dense stays dense, a patch mask moves to the
 * coarser grid), and a clear error for each way a given layout or the input can be wrong.
 * It reads only the input's layout, so no GPU is needed.
 */
import { describe, expect, it } from 'vitest';
import { windowOutput } from '../../src/ops/common.ts';
import { PatchMask, SiteLayout } from '../../src/tensor/layout.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';

const mapOn = (layout: SiteLayout | null) => ({ layout }) as Tensor;

describe('windowOutput', () => {
  it('gives floor((in + 2 pad - k) / stride) + 1 a side on the resized input layout', () => {
    const dense = SiteLayout.dense(2, 7, 9);
    const a = windowOutput('op', mapOn(dense), 3, 3, 2, 1);
    expect([a.outH, a.outW, a.outL.isDense, a.outL.batch, a.outL.height, a.outL.width]).toEqual([4, 5, true, 2, 4, 5]);
    expect(a.inL).toBe(dense);
    // Stride 1 with "same" padding keeps the very layout; a 1x3 window sizes each side apart.
    expect(windowOutput('op', mapOn(dense), 3, 3, 1, 1).outL).toBe(dense);
    const b = windowOutput('op', mapOn(dense), 1, 3, 1, 0);
    expect([b.outH, b.outW]).toEqual([7, 7]);
    // A patch-mask layout maps to the same mask at the coarser grid.
    const mask = new PatchMask(1, 2, 2, Uint8Array.from([1, 0, 0, 1]));
    const sparse = mask.layoutAt(8, 8);
    const c = windowOutput('op', mapOn(sparse), 3, 3, 2, 1);
    expect(c.outL).toBe(mask.layoutAt(4, 4));
    expect(c.outL.rows).toBe(8);
  });

  it('takes a given layout of the right grid and kind', () => {
    const given = SiteLayout.dense(2, 4, 5);
    expect(windowOutput('op', mapOn(SiteLayout.dense(2, 7, 9)), 3, 3, 2, 1, given).outL).toBe(given);
  });

  it('names the op and what is wrong', () => {
    const x = mapOn(SiteLayout.dense(2, 7, 9));
    expect(() => windowOutput('conv2d', mapOn(null), 3, 3, 1, 1)).toThrow(/^conv2d: x must be a feature map \(a tensor with a SiteLayout\)$/);
    expect(() => windowOutput('maxPool2d', x, 9, 9, 1, 0)).toThrow(/^maxPool2d: a 7x9 input is smaller than the 9x9 window$/);
    const wrong = /^depthwiseConv2d: the output layout must be a dense 2x4x5 grid$/;
    expect(() => windowOutput('depthwiseConv2d', x, 3, 3, 2, 1, SiteLayout.dense(2, 4, 4))).toThrow(wrong);
    expect(() => windowOutput('depthwiseConv2d', x, 3, 3, 2, 1, SiteLayout.dense(1, 4, 5))).toThrow(wrong);
    const sparseGiven = SiteLayout.sparse(2, 4, 5, Uint32Array.from([0, 3]));
    expect(() => windowOutput('depthwiseConv2d', x, 3, 3, 2, 1, sparseGiven)).toThrow(wrong);
  });
});
