// Per-channel and per-image scaling of feature maps: ConvNeXt's layer scale (gamma) and
// stochastic depth (drop path).
//
// Shapes: x [rows, C] (feature-map rows, channels last), gamma [C], factor [B] (one multiplier
// per image: keep[b] / (1 - prob)).
//
// Entry points:
//   channel_scale          y[r, c] = x[r, c] * gamma[c]. Also its dx (x = gy). One thread per
//                          element; dispatch ceil(n / 256) workgroups of 256 (2-D split).
//   channel_scale_partial  first pass of dgamma: partial[chunk, c] = sum over the chunk's rows
//                          of gy[r, c] * x[r, c]. One thread per (chunk, channel); all threads
//                          of a workgroup walk the same rows, adjacent threads read adjacent
//                          channels. Dispatch: x = ceil(C / 64), y = chunks; chunks.wgsl adds
//                          the chunks.
//   drop_path              y[r, c] = x[r, c] * factor[image(r)], image = grid index / (H*W)
//                          with the grid index sites[r] (SPARSE) or r (dense). Also its dx.
//                          One thread per element; dispatch as channel_scale.

// Storage: x and gy are activations or their gradients (`act`: f32, or f16 under precision
// f16; src/gpu/pipelines.ts puts the aliases in front); y is written as `act_out`, the
// activation type for channel_scale and drop_path, f32 for channel_scale_partial (partial sums
// of a parameter gradient). gamma and factor are f32.

struct Params {
  n: u32,           // elements (channel_scale, drop_path) or rows (channel_scale_partial)
  C: u32,
  chunk_rows: u32,  // channel_scale_partial: rows per chunk
  plane: u32,       // drop_path: sites per image (H*W)
}

override SPARSE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<act>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> factor: array<f32>;
@group(0) @binding(4) var<storage, read> gy: array<act>;
@group(0) @binding(5) var<storage, read> sites: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<act_out>;

// #include "chunk-range.wgsl"

@compute @workgroup_size(256)
fn channel_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  y[i] = act_out(f32(x[i]) * gamma[i % params.C]);
}

// Writes partial[chunk * C + c] into y.
@compute @workgroup_size(64)
fn channel_scale_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.x * 64u + lid.x;
  if (c >= params.C) { return; }
  let rows = chunk_range(wid.y);
  var acc = 0.0;
  for (var r = rows.x; r < rows.y; r++) {
    let i = r * params.C + c;
    acc += f32(gy[i]) * f32(x[i]);
  }
  y[wid.y * params.C + c] = act_out(acc);
}

@compute @workgroup_size(256)
fn drop_path(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid.x;
  if (i >= params.n) { return; }
  let r = i / params.C;
  var site = r;
  if (SPARSE) { site = sites[r]; }
  y[i] = act_out(f32(x[i]) * factor[site / params.plane]);
}
