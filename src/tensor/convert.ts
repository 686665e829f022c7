/**
 * Host-side conversions between PyTorch's NCHW arrays and webspark's compact rows (`[rows, C]`
 * on a SiteLayout). Used by tests, fixtures and interop; never on the training path.
 */
import type { SiteLayout } from './layout.ts';

/**
 * NCHW data of a B x C x H x W map -> the rows of `layout` (which must be a B x H x W grid):
 * row r holds the C values at site `layout.site(r)`. Values at inactive sites are dropped.
 */
export function nchwToRows(
  data: ArrayLike<number>,
  B: number,
  C: number,
  H: number,
  W: number,
  layout: SiteLayout,
): Float32Array {
  if (layout.batch !== B || layout.height !== H || layout.width !== W) {
    throw new Error(
      `nchwToRows: layout is ${layout.batch}x${layout.height}x${layout.width}, data is ${B}x${C}x${H}x${W}`,
    );
  }
  if (data.length !== B * C * H * W) throw new Error(`nchwToRows: ${data.length} values for ${B}x${C}x${H}x${W}`);
  const HW = H * W;
  const out = new Float32Array(layout.rows * C);
  for (let r = 0; r < layout.rows; r++) {
    const site = layout.site(r);
    const b = Math.floor(site / HW);
    const yx = site - b * HW;
    for (let c = 0; c < C; c++) out[r * C + c] = data[(b * C + c) * HW + yx]!;
  }
  return out;
}

/** Rows `[layout.rows, C]` -> NCHW `[B, C, H, W]`, with zeros at inactive sites. */
export function rowsToNchw(rows: ArrayLike<number>, C: number, layout: SiteLayout): Float32Array {
  if (rows.length !== layout.rows * C) {
    throw new Error(`rowsToNchw: ${rows.length} values for ${layout.rows} rows of ${C} channels`);
  }
  const HW = layout.height * layout.width;
  const out = new Float32Array(layout.batch * C * HW);
  for (let r = 0; r < layout.rows; r++) {
    const site = layout.site(r);
    const b = Math.floor(site / HW);
    const yx = site - b * HW;
    for (let c = 0; c < C; c++) out[(b * C + c) * HW + yx] = rows[r * C + c]!;
  }
  return out;
}
