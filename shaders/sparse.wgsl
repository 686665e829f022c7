// Moving feature-map rows between site layouts of one B x H x W grid: SparK's densify
// (mask fill), sparse -> dense with zeros, dense -> active rows, and the backward of each
// (they are all one "relayout", and the backward of a relayout is the relayout back).
//
// Shapes: x [src_rows, C] on the source layout, y [dst_rows, C] on the destination layout,
// token [C] (SparK's mask token). Both layouts share the grid.
//   y[r, c] = x[row_of[sites[r]], c]  if the source has that site,
//             token[c] (USE_TOKEN) or 0  otherwise.
// A dense destination has sites[r] = r; a dense source has row_of[s] = s (SRC_SPARSE /
// DST_SPARSE off: computed, nothing bound).
//
// Entry points:
//   relayout       one thread per destination element (r, c). Consecutive threads take
//                  consecutive channels, so reads and writes are contiguous for any C (no
//                  vec4 tail to guard); the per-row site lookup is the same address across
//                  those threads and comes from the cache.
//                  Dispatch: ceil(dst_rows * C / 256) workgroups of 256 (2-D split).
//   token_partial  first pass of the mask token's gradient: partial[chunk, c] = sum of gy[s, c]
//                  over the grid sites s of the chunk that are inactive (row_of[s] < 0).
//                  gy is dense [B*H*W, C]. One thread per (chunk, channel): every thread of a
//                  workgroup walks the same sites, adjacent threads read adjacent channels.
//                  Dispatch: x = ceil(C / 64), y = chunks. chunks.wgsl adds the chunks.

// Storage: x, y and gy are activations or their gradients (`act`: f32, or f16 under precision
// f16; src/gpu/pipelines.ts puts the aliases in front); the mask token and the partial sums of
// its gradient are f32 (a parameter and its gradient).

struct Params {
  n: u32,           // relayout: dst_rows * C; token_partial: grid sites
  C: u32,
  chunk_rows: u32,  // token_partial: sites per chunk
  _pad0: u32,
}

override SRC_SPARSE: bool = false;
override DST_SPARSE: bool = false;
override USE_TOKEN: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> token: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<act>;
@group(0) @binding(4) var<storage, read> sites: array<u32>;     // destination layout
@group(0) @binding(5) var<storage, read> row_of: array<i32>;    // source layout (token_partial: the sparse layout)
@group(0) @binding(6) var<storage, read> gy: array<act>;
@group(0) @binding(7) var<storage, read_write> partial: array<f32>;

// #include "chunk-range.wgsl"

@compute @workgroup_size(256)
fn relayout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let r = i / params.C;
  let c = i % params.C;
  var site = r;
  if (DST_SPARSE) { site = sites[r]; }
  var src_row = i32(site);
  if (SRC_SPARSE) { src_row = row_of[site]; }
  var v = 0.0;
  if (src_row >= 0) {
    v = f32(x[u32(src_row) * params.C + c]);
  } else if (USE_TOKEN) {
    v = token[c];
  }
  y[i] = act(v);
}

@compute @workgroup_size(64)
fn token_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.x * 64u + lid.x;
  if (c >= params.C) { return; }
  let span = chunk_range(wid.y);
  var acc = 0.0;
  for (var s = span.x; s < span.y; s++) {
    if (row_of[s] < 0) { acc += f32(gy[s * params.C + c]); }
  }
  partial[wid.y * params.C + c] = acc;
}
