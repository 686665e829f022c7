/**
 * Where the rows of a feature map live on its B x H x W grid.
 *
 * A feature map is stored channels-last as compact rows, `[rows, C]`. A dense map has one row
 * per site in raster order, row = (b*H + y)*W + x. A sparse map (SparK's encoder) has rows only
 * for the active sites, in the same raster order, and `sites[row]` gives each row's grid index;
 * `rowOf[gridIndex]` is the inverse, -1 at inactive sites. Kernels read an inactive neighbour
 * as zero (submanifold convolution), so sparse work and memory scale with the active rows.
 *
 * Layouts made from a SparK patch mask remember it, so a strided layer can find the layout of
 * the next scale: the same patch mask at the coarser grid (the official code's rule).
 */

/** Per-image patch mask: `visible[(b*h + i)*w + j]` is 1 where patch (i, j) of image b is kept. */
export class PatchMask {
  private layouts = new Map<string, SiteLayout>();

  constructor(
    readonly batch: number,
    readonly h: number,
    readonly w: number,
    readonly visible: Uint8Array,
  ) {
    if (visible.length !== batch * h * w) {
      throw new Error(`PatchMask: ${visible.length} flags for a ${batch}x${h}x${w} mask`);
    }
  }

  get visibleCount(): number {
    let n = 0;
    for (const v of this.visible) n += v ? 1 : 0;
    return n;
  }

  /** The layout of this mask on an H x W grid (each patch covers (H/h) x (W/w) sites). */
  layoutAt(height: number, width: number): SiteLayout {
    const key = `${height}x${width}`;
    let layout = this.layouts.get(key);
    if (layout) return layout;
    if (height % this.h || width % this.w) {
      throw new Error(`PatchMask ${this.h}x${this.w} does not tile a ${height}x${width} grid`);
    }
    layout = SiteLayout.sparse(this.batch, height, width, this.sitesAt(height, width), this);
    this.layouts.set(key, layout);
    return layout;
  }

  /**
   * Makes this mask show `other`'s pattern, in place: its flags and every layout made from it
   * change their contents, not their identity or sizes. A recorded training step refers to one
   * mask and its layouts; assigning the next step's mask before a replay is how the replay
   * sees it. Both masks must keep the same number of patches visible.
   */
  assign(other: PatchMask): void {
    if (other.batch !== this.batch || other.h !== this.h || other.w !== this.w) {
      throw new Error(`PatchMask.assign: a ${other.batch}x${other.h}x${other.w} mask onto a ${this.batch}x${this.h}x${this.w} one`);
    }
    if (other.visibleCount !== this.visibleCount) {
      throw new Error(`PatchMask.assign: ${other.visibleCount} visible patches where the recorded mask has ${this.visibleCount}`);
    }
    this.visible.set(other.visible);
    for (const layout of this.layouts.values()) layout.overwriteSites(this.sitesAt(layout.height, layout.width));
  }

  private sitesAt(height: number, width: number): Uint32Array {
    const fy = height / this.h;
    const fx = width / this.w;
    const sites: number[] = [];
    for (let b = 0; b < this.batch; b++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const patch = (b * this.h + Math.floor(y / fy)) * this.w + Math.floor(x / fx);
          if (this.visible[patch]) sites.push((b * height + y) * width + x);
        }
      }
    }
    return Uint32Array.from(sites);
  }
}

export class SiteLayout {
  private static nextId = 1;
  /** Identifies the layout (GPU copies of `sites`/`rowOf` are cached by it). */
  readonly id = SiteLayout.nextId++;
  private rowOfCache: Int32Array | null = null;

  private constructor(
    readonly batch: number,
    readonly height: number,
    readonly width: number,
    /** Row -> grid index; null for a dense layout (row = grid index). */
    readonly sites: Uint32Array | null,
    readonly mask: PatchMask | null,
  ) {}

  static dense(batch: number, height: number, width: number): SiteLayout {
    return new SiteLayout(batch, height, width, null, null);
  }

  /** A sparse layout from grid indices in increasing order. */
  static sparse(
    batch: number,
    height: number,
    width: number,
    sites: Uint32Array,
    mask: PatchMask | null = null,
  ): SiteLayout {
    const total = batch * height * width;
    for (let i = 0; i < sites.length; i++) {
      if (sites[i]! >= total || (i > 0 && sites[i]! <= sites[i - 1]!)) {
        throw new Error('SiteLayout.sparse: sites must be increasing grid indices inside the grid');
      }
    }
    return new SiteLayout(batch, height, width, sites, mask);
  }

  /** Replaces the active sites, same count, in place (PatchMask.assign). */
  overwriteSites(sites: Uint32Array): void {
    if (!this.sites || sites.length !== this.sites.length) throw new Error('overwriteSites: the number of active sites must not change');
    this.sites.set(sites);
    if (this.rowOfCache) {
      this.rowOfCache.fill(-1);
      this.sites.forEach((site, row) => (this.rowOfCache![site] = row));
    }
  }

  get isDense(): boolean {
    return this.sites === null;
  }

  get gridSize(): number {
    return this.batch * this.height * this.width;
  }

  get rows(): number {
    return this.sites ? this.sites.length : this.gridSize;
  }

  /** Grid index -> row, -1 where the site is inactive. */
  get rowOf(): Int32Array {
    if (!this.rowOfCache) {
      const map = new Int32Array(this.gridSize);
      if (this.sites) {
        map.fill(-1);
        this.sites.forEach((site, row) => (map[site] = row));
      } else {
        for (let i = 0; i < map.length; i++) map[i] = i;
      }
      this.rowOfCache = map;
    }
    return this.rowOfCache;
  }

  /** Grid index of `row`. */
  site(row: number): number {
    return this.sites ? this.sites[row]! : row;
  }

  /**
   * The layout of a layer's output grid of `height` x `width`: dense stays dense, a patch-mask
   * layout maps to the same mask at that size. Other sparse layouts need the output layout
   * given explicitly.
   */
  resized(height: number, width: number): SiteLayout {
    if (height === this.height && width === this.width) return this;
    if (this.isDense) return SiteLayout.dense(this.batch, height, width);
    if (this.mask) return this.mask.layoutAt(height, width);
    throw new Error('resized: a sparse layout without a patch mask needs its output layout given');
  }

  sameGrid(other: SiteLayout): boolean {
    return this.batch === other.batch && this.height === other.height && this.width === other.width;
  }

  /** True if both describe the same active sites. */
  equals(other: SiteLayout): boolean {
    if (this === other) return true;
    if (!this.sameGrid(other) || this.rows !== other.rows) return false;
    if (this.isDense && other.isDense) return true;
    for (let r = 0; r < this.rows; r++) if (this.site(r) !== other.site(r)) return false;
    return true;
  }
}
