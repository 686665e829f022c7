// LayerNorm over the channels of each row (src/ops/norm.ts), forward and backward. ConvNeXt's
// channels_last and channels_first LayerNorm are both this on our channels-last rows.
//
// x, y, dy, dx: [N, C] rows (dense or sparse layout: a row is a site either way).
// gamma, beta: [C]. stats: [N, 2] = (mean, rstd) of each row, written by the forward and
// read by the backward.
//
// Row geometry (forward, dx): a workgroup of 256 threads holds RPW = 256 / TPR rows with TPR
// threads per row (TPR an override, a power of two picked from C so that C = 40 does not
// leave most of 256 threads idle and C = 1536 gives each thread 6 channels). Thread t of a
// row walks channels t, t + TPR, ...; row sums are trees over the row's TPR slots of
// workgroup memory. Linear workgroup id g = wid.x + wid.y * nwg.x, row = g * RPW + lid / TPR.
// Rows past N still run the barriers and write nothing.
//
// Column geometry (dgamma, dbeta): as in batchnorm.wgsl, TC channels x (256 / TC) row lanes
// per workgroup, one workgroup per (channel tile, chunk of rows), a tree over lanes, one
// partial per chunk in part_out[(plane * chunks + chunk) * C + c]; param_combine repeats on
// the partials until one chunk is left.
//
// Entry points:
//   forward         row geometry: mean, then the variance as the mean of (x - mean)^2 (two
//                   passes over a row that is in cache: no cancellation), y, stats.
//   backward_input  row geometry: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy*gamma.
//   param_partial   column geometry: (sum dy, sum dy * xhat) per chunk and channel.
//   param_combine   column geometry over the partials.
//
// Storage (norm-buffers.wgsl): x, dy, y as the activations (act), read into f32; the row
// sums, statistics and partials in f32.

struct Params {
  n: u32,           // rows (or input chunks, for param_combine)
  c: u32,           // channels
  tiles: u32,       // channel tiles = ceil(C / TC) (column geometry)
  chunks: u32,      // chunks this dispatch writes (column geometry)
  in_chunks: u32,   // planes of part_in are this long (param_combine)
  per_thread: u32,  // rows each thread walks (column geometry)
  eps: f32,
  _pad0: u32,
}

// Threads per row in the row geometry; channels per tile in the column geometry.
override TPR: u32 = 32u;
override TC: u32 = 64u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
// stats: [N, 2] (mean, rstd)
// #include "norm-buffers.wgsl"

var<workgroup> red: array<vec2<f32>, 256>;

// Sum of `v` over the TPR threads of this thread's row; every thread gets the result.
fn row_sum(v: vec2<f32>, lid: u32) -> vec2<f32> {
  workgroupBarrier(); // reads of the previous sum are done
  red[lid] = v;
  let t = lid % TPR;
  for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (t < s) { red[lid] += red[lid + s]; }
  }
  workgroupBarrier();
  return red[lid - t];
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let t = lid % TPR;
  let valid = row < params.n;
  let base = row * params.c;
  let inv_c = 1.0 / f32(params.c);
  var s = 0.0;
  if (valid) {
    for (var k = t; k < params.c; k += TPR) { s += f32(x[base + k]); }
  }
  let mean = row_sum(vec2<f32>(s, 0.0), lid).x * inv_c;
  var q = 0.0;
  if (valid) {
    for (var k = t; k < params.c; k += TPR) {
      let d = f32(x[base + k]) - mean;
      q += d * d;
    }
  }
  let rstd = 1.0 / sqrt(row_sum(vec2<f32>(q, 0.0), lid).x * inv_c + params.eps);
  if (!valid) { return; }
  for (var k = t; k < params.c; k += TPR) {
    y[base + k] = act_out((f32(x[base + k]) - mean) * rstd * gamma[k] + beta[k]);
  }
  if (t == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}

@compute @workgroup_size(256)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR;
  let t = lid % TPR;
  let valid = row < params.n;
  let base = row * params.c;
  var mean = 0.0;
  var rstd = 0.0;
  var acc = vec2<f32>(0.0);
  if (valid) {
    mean = stats[2u * row];
    rstd = stats[2u * row + 1u];
    for (var k = t; k < params.c; k += TPR) {
      let g = f32(dy[base + k]) * gamma[k];
      acc += vec2<f32>(g, g * (f32(x[base + k]) - mean) * rstd);
    }
  }
  let m = row_sum(acc, lid) / f32(params.c); // (mean(g), mean(g * xhat))
  if (!valid) { return; }
  for (var k = t; k < params.c; k += TPR) {
    let xhat = (f32(x[base + k]) - mean) * rstd;
    y[base + k] = act_out(rstd * (f32(dy[base + k]) * gamma[k] - m.x - xhat * m.y));
  }
}

// #include "column-geometry.wgsl"

// Tree over the lanes of each channel (slot lane*TC + c), then lane 0 writes both planes.
fn finish_columns(acc: vec2<f32>, col: Column, lid: u32) {
  red[lid] = acc;
  for (var s = WG / TC / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (lid / TC < s) { red[lid] += red[lid + s * TC]; }
  }
  workgroupBarrier();
  if (col.valid && col.lane == 0u) {
    part_out[col.chunk * params.c + col.ch] = red[lid].x;
    part_out[(params.chunks + col.chunk) * params.c + col.ch] = red[lid].y;
  }
}

@compute @workgroup_size(256)
fn param_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  var acc = vec2<f32>(0.0);
  if (col.valid) {
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      let i = r * params.c + col.ch;
      let g = f32(dy[i]);
      acc += vec2<f32>(g, g * (f32(x[i]) - stats[2u * r]) * stats[2u * r + 1u]);
    }
  }
  finish_columns(acc, col, lid);
}

@compute @workgroup_size(256)
fn param_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let col = column(wid, nwg, lid);
  var acc = vec2<f32>(0.0);
  if (col.valid) {
    for (var r = col.first; r < column_end(col); r += WG / TC) {
      acc += vec2<f32>(part_in[r * params.c + col.ch],
                       part_in[(params.in_chunks + r) * params.c + col.ch]);
    }
  }
  finish_columns(acc, col, lid);
}
